"""The error format of the API: Django's ValidationError keys as nested field errors."""

from django.core.exceptions import ValidationError

from drsorch.api import field_errors


def test_plain_and_all_keys():
    exc = ValidationError({"name": ["Taken."], "__all__": ["Choose at least one server."]})
    assert field_errors(exc) == {"name": ["Taken."], "non_field_errors": ["Choose at least one server."]}


def test_a_message_without_field_is_a_non_field_error():
    assert field_errors(ValidationError("Used by plan X.")) == {"non_field_errors": ["Used by plan X."]}


def test_wave_keys_become_objects_keyed_by_position():
    exc = ValidationError(
        {
            "waves.0.name": ["Wave #1 needs a name."],
            "waves.2.protection_groups": ["Empty.", "Server twice."],
            "waves.2.depends_on": ["Unknown wave."],
        }
    )
    assert field_errors(exc) == {
        "waves": {
            "0": {"name": ["Wave #1 needs a name."]},
            "2": {"protection_groups": ["Empty.", "Server twice."], "depends_on": ["Unknown wave."]},
        }
    }


def test_a_message_about_all_waves_is_their_non_field_error_beside_the_waves_at_fault():
    exc = ValidationError(
        {"waves": ["A cycle: 'A' → 'B' → 'A'."], "waves.1.name": ["Twice."], "rto_target_minutes": ["Too big."]}
    )
    assert field_errors(exc) == {
        "waves": {"non_field_errors": ["A cycle: 'A' → 'B' → 'A'."], "1": {"name": ["Twice."]}},
        "rto_target_minutes": ["Too big."],
    }


def test_a_plain_field_that_also_has_nested_errors_keeps_both():
    exc = ValidationError({"servers": ["Bad."], "servers.0.id": ["Unknown."]})
    assert field_errors(exc) == {"servers": {"non_field_errors": ["Bad."], "0": {"id": ["Unknown."]}}}
