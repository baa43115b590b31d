"""The API's JSON parser: whatever the body, a 400 problem, never a 500.

DRF's parser lets three kinds of body through to a 500: JSON nested so deep that the decoder (or anything that
walks the result later: validation, the idempotency hash, the error renderer) runs out of stack; a `charset`
that names no text encoding; and strings that no column can hold (a NUL character, half a surrogate pair),
which PostgreSQL would refuse only once the transaction is under way."""

import json

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import APIException, ParseError

from .problems import InvalidInput

# The deepest body the API takes is a rule set's parameters inside the request (8 levels); 32 leaves room and
# stays far from Python's recursion limit, which every later walk of the data shares.
MAX_DEPTH = 32


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "The body is too large."
    default_code = "too_large"


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        # DRF reads the stream itself, past Django's own limit on request bodies: apply that limit here.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge(f"The body is larger than {limit} bytes.")
        try:
            # bytes.decode takes text encodings only: `charset=zlib` is a LookupError, not a crash later.
            text = raw.decode(encoding)
        except LookupError:
            raise ParseError(f"Unsupported charset {encoding!r}; send UTF-8.") from None
        except UnicodeDecodeError:
            raise ParseError(f"The body is not valid {encoding} text.") from None
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError(f"JSON nested more than {MAX_DEPTH} levels deep.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        _check(data)
        return data


def _refuse_constant(name):
    # NaN and Infinity are not JSON, and no field of the API takes them.
    raise ValueError(f"{name} is not valid JSON")


def _check(data):
    """Depth and strings, walked without recursion."""
    pending = [(data, "", 1)]
    while pending:
        value, path, depth = pending.pop()
        if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
            raise ParseError(f"JSON nested more than {MAX_DEPTH} levels deep.")
        if isinstance(value, dict):
            for key, item in value.items():
                field = f"{path}.{key}" if path else key
                _check_string(key, field)
                pending.append((item, field, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
        elif isinstance(value, str):
            _check_string(value, path)


def _check_string(value, field):
    if "\x00" in value:
        raise InvalidInput(_printable(field), "A NUL character is not allowed.", code="null_characters_not_allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(_printable(field), "Half of a UTF-16 surrogate pair is not a character.",
                           code="surrogate_characters_not_allowed") from None


def _printable(field):
    # The field's name is echoed in the answer: keep it short and free of what made it invalid.
    cleaned = field.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")[:200]
    return cleaned
