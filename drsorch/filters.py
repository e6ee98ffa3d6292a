"""Filter fields the pages and the API share: a bad value is refused, saying what was given
and what would do.

django-filter's own fields let some bad values through (its yes/no filter reads "maybe" as
"any", a number filter hands 1.5 to an integer column, which the database truncates) and word
the others for a form the reader may never have seen ("Select a valid choice. That choice is
not one of the available choices."). The API answers these messages as a 400 keyed by the query
parameter; the list pages show them above the list, which stays empty until the filter is
fixed (`drsorch.web.filtered_page`).
"""

from datetime import date, datetime, time, timedelta

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_filters.fields import ModelChoiceField

from .web import MAX_ID, whole_number

DAY_EXAMPLE = "2026-11-28"


def shown(value: object) -> str:
    """A value someone sent, quoted and cut short, for a message about it."""
    text = str(value)
    return f'"{text[:40]}{"…" if len(text) > 40 else ""}"'


def refused(message: str, value: object, *, code: str = "invalid", **params: object) -> ValidationError:
    """A ValidationError about `value`, quoted where `message` says %(value)s.

    What someone sent goes in the error's params, never into the message itself: the API's
    filter backend formats every message with its params (`message % params`), so a "%" typed
    into a query would otherwise break the answer into a 500."""
    return ValidationError(message, code=code, params={"value": shown(value), **params})


def choice_messages(noun: str, choices: list[tuple[str, str]]) -> dict[str, str]:
    """`error_messages` of a choice filter: the value given and the values it takes, e.g.
    '"BACKUP" is not a mode: use DRILL or RECOVERY.'"""
    values = [str(value) for value, _ in choices]
    accepted = " or ".join(values) if len(values) < 3 else ", ".join(values[:-1]) + " or " + values[-1]
    return {
        "invalid_choice": f'"%(value)s" is not {noun}: use {accepted.replace("%", "%%")}.',
        "invalid_list": "Give a list of values: repeat the parameter once for each value.",
    }


# --- Ids ---------------------------------------------------------------------------------------


class IdChoiceField(ModelChoiceField):
    """The id of an object (the select of the pages sends one): a whole number of ASCII digits
    within the database's range, of an object that exists."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        noun = self.queryset.model._meta.verbose_name
        number = whole_number(value.strip() if isinstance(value, str) else value)
        if not number:
            raise refused(
                "%(value)s is not the id of a %(noun)s: use a whole number from 1 to %(max)s.",
                value,
                code="invalid_choice",
                noun=noun,
                max=MAX_ID,
            )
        try:
            return self.queryset.get(pk=number)
        except self.queryset.model.DoesNotExist:
            raise ValidationError(
                "There is no %(noun)s with id %(id)s.", code="invalid_choice", params={"noun": noun, "id": number}
            )


class IdChoiceFilter(django_filters.ModelChoiceFilter):
    """ModelChoiceFilter whose bad values say what was given (IdChoiceField); its select
    offers "Any" for no choice."""

    field_class = IdChoiceField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("empty_label", "Any")
        super().__init__(*args, **kwargs)


# --- Whole numbers -----------------------------------------------------------------------------


class WholeNumberField(forms.Field):
    """A whole number from 0 to `maximum` written in ASCII digits: never a fraction the database
    would truncate, nor a number past its integers."""

    widget = forms.NumberInput(attrs={"min": 0, "step": 1})

    def __init__(self, *, maximum: int = MAX_ID, **kwargs):
        self.maximum = maximum
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        number = whole_number(value.strip() if isinstance(value, str) else value, maximum=self.maximum)
        if number is None:
            raise refused("%(value)s is not a whole number from 0 to %(max)s.", value, max=self.maximum)
        return number

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "max": self.maximum}


class WholeNumberFilter(django_filters.NumberFilter):
    """NumberFilter of whole numbers (WholeNumberField); `maximum` defaults to the database's
    largest integer."""

    field_class = WholeNumberField

    def get_max_validator(self):
        return None  # the field's own maximum


# --- Yes, no or any ----------------------------------------------------------------------------

TRUE_WORDS = frozenset({"true", "yes", "1", "on"})
FALSE_WORDS = frozenset({"false", "no", "0", "off"})
# "unknown" is what the pages' select sent for "any" before it was worded Any / Yes / No:
# bookmarked URLs keep working.
ANY_WORDS = frozenset({"", "any", "unknown"})


def yes_no(value: object) -> bool | None:
    """`value` as True, False or None (any); ValueError when it is none of these."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    if text in ANY_WORDS:
        return None
    raise ValueError(value)


class AnyYesNoSelect(forms.Select):
    """A select of Any / Yes / No sending "" / "true" / "false" (the API's spelling too)."""

    def __init__(self, attrs=None):
        super().__init__(attrs, choices=[("", "Any"), ("true", "Yes"), ("false", "No")])

    def format_value(self, value):
        try:
            parsed = yes_no(value)
        except ValueError:
            return [""]
        return [{True: "true", False: "false"}.get(parsed, "")]


class YesNoField(forms.Field):
    """True, False or None (any). Django's NullBooleanField reads any other word as "any", so
    `?in_drs=maybe` listed everything; this refuses it."""

    widget = AnyYesNoSelect

    def to_python(self, value):
        try:
            return yes_no(value)
        except ValueError:
            raise refused("%(value)s is not yes or no: use true or false, or leave it out for any.", value)

    def validate(self, value):
        if value is None and self.required:
            raise ValidationError(self.error_messages["required"], code="required")


class YesNoFilter(django_filters.BooleanFilter):
    """BooleanFilter that refuses words other than yes/no/any (YesNoField)."""

    field_class = YesNoField


# --- Days and instants -------------------------------------------------------------------------


class DayField(forms.DateField):
    """A day written YYYY-MM-DD (a date input on the pages)."""

    widget = forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})
    input_formats = ["%Y-%m-%d"]

    def to_python(self, value):
        try:
            return super().to_python(value.strip() if isinstance(value, str) else value)
        except ValidationError:
            raise refused("%(value)s is not a day: write it YYYY-MM-DD, e.g. %(example)s.", value, example=DAY_EXAMPLE)


class DayFilter(django_filters.DateFilter):
    """Instants of `field_name` on or after a day (`lookup_expr="gte"`), or on or before it
    (`"lte"`: up to the end of that day), in the site's time zone."""

    field_class = DayField

    def filter(self, qs, value):
        if value is None:
            return qs
        start = timezone.make_aware(datetime.combine(value, time.min))
        if self.lookup_expr == "gte":
            return qs.filter(**{f"{self.field_name}__gte": start})
        if value == date.max:
            return qs  # the last day there is: nothing lies after it
        return qs.filter(**{f"{self.field_name}__lt": start + timedelta(days=1)})


class RangeCheckForm(forms.Form):
    """The form of a filterset with ranges: a range whose start is after its end matches
    nothing, which a list would show as "nothing matches"; it is refused on its end field.
    Subclasses name the (start, end) field pairs in `ranges`."""

    ranges: tuple[tuple[str, str], ...] = ()

    def clean(self):
        data = super().clean()
        for start, end in self.ranges:
            low, high = data.get(start), data.get(end)
            if low is not None and high is not None and low > high:
                self.add_error(
                    end,
                    ValidationError(
                        "The end of the range (%(end)s) is before its start (%(start)s).",
                        code="invalid",
                        params={"end": high.isoformat(), "start": low.isoformat()},
                    ),
                )
        return data
