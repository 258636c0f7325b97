import type { Actor } from '../auth/principal';
import { Injectable } from '@nestjs/common';
import { notFound } from '../errors';
import { type ResourceId } from '../../common/values';
import { newId } from '../model/value-parsers';
import type { Page, PageRequest } from '../store/page';
import type { Segment } from '../model/segment';
import { SegmentRepository } from './segment.repository';
import type { CreateSegment } from './segment.schemas';

@Injectable()
export class SegmentService {
  constructor(private readonly segments: SegmentRepository) {}

  async create(input: CreateSegment, actor: Actor): Promise<Segment> {
    return this.segments.create(
      {
        id: newId(),
        tenantId: input.tenantId,
        name: input.name,
        vlanId: input.vlanId ?? null,
        cidr: input.cidr ?? null,
        createdAt: new Date().toISOString(),
      },
      input.vni,
      actor,
    );
  }

  async get(id: ResourceId): Promise<Segment> {
    const segment = await this.segments.get(id);
    if (!segment) {
      throw notFound('segment', id);
    }
    return segment;
  }

  list(page: PageRequest, tenantId?: ResourceId): Promise<Page<Segment>> {
    return this.segments.list(page, tenantId);
  }

  /** Refused while ports remain; the VNI goes into quarantine. */
  async delete(id: ResourceId, actor: Actor): Promise<void> {
    await this.segments.delete(id, actor);
  }
}
