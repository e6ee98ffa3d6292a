"""The API's request parsers (their own module: DRF imports them while it loads its settings,
before drsorch.api, which needs DRF's views, can be imported)."""

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser; a body nested past Python's recursion limit (`[[[[…]]]]` a few
    thousand deep fits in any size limit) is a 400 parse error, not a RecursionError's 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply.") from None
