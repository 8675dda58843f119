from chalicelib.jobs.rotate import rotate_if_due

DAY = 86400


def test_rotation_job_rotates_only_when_the_key_is_old_enough(ctr, clock):
    first = ctr.keyring.current_kid()
    clock.advance(29 * DAY)
    assert rotate_if_due(ctr)["rotated"] is False
    assert ctr.keyring.current_kid() == first
    clock.advance(DAY)
    report = rotate_if_due(ctr)
    assert report["rotated"] is True and report["current"] != first
