"""The API's request parsers (their own module: DRF imports them while it loads its settings,
before drsorch.api, which needs DRF's views, can be imported).

Each refuses a body with a NUL character in any key or string with a 400: no field takes one,
and PostgreSQL refuses it in text and jsonb, so it would otherwise reach the first query (a
uniqueness check, a filter) as a 500."""

from django.http import QueryDict
from rest_framework import exceptions, parsers

NUL = "\x00"


def refuse_nul(data):
    """`data` unchanged, or ParseError when a key or string anywhere in it holds a NUL character
    (walked with its own stack: the JSON parser has already bounded its depth)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, QueryDict):
            stack.extend(key for key in item)
            stack.extend(value for values in item.lists() for value in values[1])
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and NUL in item:
            raise exceptions.ParseError("The body holds a NUL character (\\u0000); no field accepts one.")
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested past Python's recursion limit (`[[[[…]]]]` a few
    thousand deep fits in any size limit) is a 400 parse error, not a RecursionError's 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply.") from None
        return refuse_nul(data)


class FormParser(parsers.FormParser):
    """DRF's form parser, refusing NUL characters."""

    def parse(self, stream, media_type=None, parser_context=None):
        return refuse_nul(super().parse(stream, media_type, parser_context))


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, refusing NUL characters in its fields (files are not text)."""

    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        refuse_nul(result.data)
        return result
