import { Global, Module } from '@nestjs/common';
import { ChangeLogReader } from './change-log-reader';
import { MaterializedView } from './materialized-view';
import { RedisStore } from './redis-store';

@Global()
@Module({ providers: [RedisStore, MaterializedView, ChangeLogReader], exports: [RedisStore, MaterializedView, ChangeLogReader] })
export class StoreModule {}
