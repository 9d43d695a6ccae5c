from bot.service.progress import ProgressHub
from bot.service.requests import JobUpdate, Phase


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_is_throttled_but_phase_changes_go_out_at_once():
    clock = Clock()
    hub = ProgressHub(interval=5.0, clock=clock)
    seen = []
    hub.subscribe("j1", seen.append)
    hub.publish(JobUpdate("j1", Phase.QUEUED, position=3))
    clock.now = 1.0
    hub.publish(JobUpdate("j1", Phase.QUEUED, position=2))  # throttled
    hub.publish(JobUpdate("j1", Phase.RUNNING, fraction=0.1))  # new phase: at once
    clock.now = 2.0
    hub.publish(JobUpdate("j1", Phase.RUNNING, fraction=0.3))  # throttled
    clock.now = 6.5
    hub.publish(JobUpdate("j1", Phase.RUNNING, fraction=0.6))  # 5 s later: sent
    hub.publish(JobUpdate("j1", Phase.DONE))
    hub.publish(JobUpdate("j1", Phase.RUNNING, fraction=0.9))  # after the end: nobody listens
    assert [(u.phase, u.position, u.fraction) for u in seen] == [
        (Phase.QUEUED, 3, 0.0),
        (Phase.RUNNING, None, 0.1),
        (Phase.RUNNING, None, 0.6),
        (Phase.DONE, None, 0.0),
    ]


def test_unsubscribe_and_a_failing_callback_do_not_break_others():
    hub = ProgressHub(interval=0.0)
    good = []

    def broken(update):
        raise RuntimeError("boom")

    hub.subscribe("j", broken)
    stop = hub.subscribe("j", good.append)
    hub.publish(JobUpdate("j", Phase.QUEUED, position=1))
    stop()
    hub.publish(JobUpdate("j", Phase.RUNNING))
    assert [u.phase for u in good] == [Phase.QUEUED]
