/**
 * Dispatch from a typed request to its handler. The handlers live by concern in
 * account_handlers.ts and file_handlers.ts; shared checks in context.ts.
 *
 * @module
 */

import type { Request } from "../lib/protocol.ts";
import { ACCOUNT_HANDLERS } from "./account_handlers.ts";
import type { HandledRequest, Handler, HandlerContext } from "./context.ts";
import { FILE_HANDLERS } from "./file_handlers.ts";

const HANDLERS: { [T in HandledRequest]: Handler<T> } = { ...ACCOUNT_HANDLERS, ...FILE_HANDLERS };

/** True when `type` is answered by a handler (every request except hello and ping). */
export function isHandledRequest(type: Request["type"]): type is HandledRequest {
  return Object.hasOwn(HANDLERS, type);
}

/** Runs the handler of `request`; throws `RequestError` when it is refused. */
export function handleRequest(
  context: HandlerContext,
  request: Extract<Request, { type: HandledRequest }>,
): Promise<unknown> | unknown {
  const handler = HANDLERS[request.type] as Handler<typeof request.type>;
  return handler(context, request as never);
}
