import { Global, Module } from '@nestjs/common';
import { ChangeLogReader } from './change-log-reader';
import { MaterializedView } from './materialized-view';
import { RedisStore } from './redis-store';
import { StoreRecovery } from './store-recovery';

@Global()
@Module({ providers: [RedisStore, MaterializedView, ChangeLogReader, StoreRecovery], exports: [RedisStore, MaterializedView, ChangeLogReader, StoreRecovery] })
export class StoreModule {}
