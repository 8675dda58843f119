from chalicelib.container import Container
from chalicelib.jobs.rotate import rotate_if_due

DAY = 86400


def test_rotation_job_rotates_only_when_the_key_is_old_enough(ctr, clock):
    first = ctr.keyring.current_kid()
    clock.advance(29 * DAY)
    assert rotate_if_due(ctr.keyring, ctr.settings)["rotated"] is False
    assert ctr.keyring.current_kid() == first
    clock.advance(DAY)
    report = rotate_if_due(ctr.keyring, ctr.settings)
    assert report["rotated"] is True and report["current"] != first


def test_a_promoted_key_serves_a_full_period_before_the_next_rotation(ctr, clock):
    ctr.keyring.current_kid()
    clock.advance(30 * DAY)
    assert rotate_if_due(ctr.keyring, ctr.settings)["rotated"] is True
    promoted = ctr.keyring.current_kid()
    for _ in range(29):
        clock.advance(DAY)
        assert rotate_if_due(ctr.keyring, ctr.settings)["rotated"] is False
        assert ctr.keyring.current_kid() == promoted
    clock.advance(DAY)
    assert rotate_if_due(ctr.keyring, ctr.settings)["rotated"] is True


def test_a_key_set_without_current_since_measures_from_the_last_retirement(ctr, clock):
    ctr.keyring.current_kid()
    clock.advance(30 * DAY)
    ctr.keyring.rotate()
    keyset, version = ctr.keystore.load_versioned()
    for key in keyset["keys"]:
        key.pop("current_since", None)
    ctr.keystore.replace(keyset, version)
    instance = Container(ctr.settings, clock)   # a new Lambda instance reads the stored set
    clock.advance(DAY)
    assert rotate_if_due(instance.keyring, instance.settings)["rotated"] is False
    clock.advance(29 * DAY)
    assert rotate_if_due(instance.keyring, instance.settings)["rotated"] is True
