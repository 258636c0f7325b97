import { Global, Module } from '@nestjs/common';
import { MaterializedView } from './materialized-view';
import { RedisStore } from './redis-store';

@Global()
@Module({ providers: [RedisStore, MaterializedView], exports: [RedisStore, MaterializedView] })
export class StoreModule {}
