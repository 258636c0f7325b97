import { Controller, Get, Param, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/access';
import { ErrorCode, OverlayError } from '../errors';
import { loadStatusPage, STATUS_PAGE_HEADERS, type StatusPageAsset } from './status-page.assets';

/**
 * The read-only status page at /ui: static files, public because they hold no data. The page
 * asks for a token and reads the API with it like any client (Authorization: Bearer), so it
 * shows exactly what that token may read. Not an API route: left out of the OpenAPI document.
 */
@Controller('ui')
export class StatusPageController {
  private readonly files = loadStatusPage();

  @Get()
  @Public()
  async index(@Res() reply: FastifyReply) {
    await this.send(reply, this.files.get('index.html')!);
  }

  @Get(':file')
  @Public()
  async file(@Param('file') name: string, @Res() reply: FastifyReply) {
    // `/ui/` is the page too; anything not in the list is not served (no path is ever built from the URL).
    const asset = name === '' ? this.files.get('index.html') : this.files.get(name);
    if (!asset) {
      throw new OverlayError(ErrorCode.NotFound, 'no such route');
    }
    await this.send(reply, asset);
  }

  private async send(reply: FastifyReply, asset: StatusPageAsset): Promise<void> {
    await reply.status(200).headers(STATUS_PAGE_HEADERS).header('content-type', asset.contentType).send(asset.body);
  }
}
