"""Domain errors as HTTP answers: never a 500 for something jobcast knows about."""

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import IdempotencyConflictError, UnavailableError, UnknownOffsetError
from contracts.control import DelayError, JobFinishedError
from contracts.errors import JobNotFinishedError, OffsetExpiredError
from jobcast.http.validation import short_errors
from producer.rate_limit import RateLimitedError
from query.feed_slots import TooManyFeedsError

_UNDECODABLE_BODY = "There was an error parsing the body"


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors to HTTP answers: never a 500 for something we know about."""

    @app.exception_handler(UnknownOffsetError)
    async def not_found(_: Request, exc: UnknownOffsetError) -> Response:
        return JSONResponse({"detail": "Offset not found"}, status_code=404)

    @app.exception_handler(OffsetExpiredError)
    async def expired(_: Request, exc: OffsetExpiredError) -> Response:
        return JSONResponse({"detail": "Offset expired"}, status_code=410)

    @app.exception_handler(JobNotFinishedError)
    async def not_finished(_: Request, exc: JobNotFinishedError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(IdempotencyConflictError)
    async def conflict(_: Request, exc: IdempotencyConflictError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(JobFinishedError)
    async def finished(_: Request, exc: JobFinishedError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(DelayError)
    async def out_of_bounds(_: Request, exc: DelayError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(UnavailableError)
    async def unavailable(_: Request, exc: UnavailableError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(RateLimitedError)
    async def too_many(_: Request, exc: RateLimitedError) -> Response:
        headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse({"detail": str(exc)}, status_code=429, headers=headers)

    @app.exception_handler(TooManyFeedsError)
    async def too_many_feeds(_: Request, exc: TooManyFeedsError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=429)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        # NOTE: not FastAPI's own 422, which echoes all of each error's input (see validation.py).
        return JSONResponse({"detail": short_errors(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # NOTE: FastAPI answers 400 when it cannot even decode the body (not UTF-8); to a
        # caller that is malformed JSON like any other, so it gets the same 422.
        if exc.status_code == 400 and exc.detail == _UNDECODABLE_BODY:
            return JSONResponse({"detail": "request body is not valid UTF-8 JSON"}, status_code=422)
        return await http_exception_handler(request, exc)
