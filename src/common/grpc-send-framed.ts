import { BaseServerInterceptingCall } from '@grpc/grpc-js/build/src/server-interceptors';
import { FramedMessage } from './grpc-frame';

/*
 * grpc-js' server side only (the controller), apart from grpc-frame.ts: the agent, which uses the
 * encoders but serves no stream, does not load grpc-js' server call for it.
 */

interface SerializingCall {
  handler: { serialize(value: unknown): Buffer };
  serializeMessage(value: unknown): Buffer;
}

const PATCHED = Symbol.for('overlay.grpcSendsFramedMessagesAsIs');

/** Whether grpc-js frames a response the way this expects: flag 0, length, the serializer's bytes. */
function framingAsExpected(serializeMessage: (value: unknown) => Buffer): boolean {
  try {
    const framed = serializeMessage.call({ handler: { serialize: (v: Buffer) => v } }, Buffer.from([1, 2, 3]));
    return framed.equals(Buffer.from([0, 0, 0, 0, 3, 1, 2, 3]));
  } catch {
    return false;
  }
}

/**
 * Makes grpc-js's server calls of this process send a FramedMessage's frame as it is instead of
 * serializing and framing it again; idempotent. Answers whether they do (false: grpc-js is not
 * shaped as expected and was left alone; a service's serializer must then return the message of a
 * FramedMessage, which grpc-js copies and frames as before).
 */
export function sendFramedMessagesAsIs(): boolean {
  const proto = BaseServerInterceptingCall.prototype as unknown as SerializingCall & { [PATCHED]?: true };
  if (proto[PATCHED]) {
    return true;
  }
  const serializeMessage = proto.serializeMessage;
  if (typeof serializeMessage !== 'function' || !framingAsExpected(serializeMessage)) {
    return false;
  }
  proto.serializeMessage = function (this: SerializingCall, value: unknown): Buffer {
    return value instanceof FramedMessage ? value.frame : serializeMessage.call(this, value);
  };
  proto[PATCHED] = true;
  return true;
}
