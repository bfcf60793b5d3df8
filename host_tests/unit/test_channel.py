# The broadcast Channel (firmware/nostall/channel.py) and the event-stream wire format
# (firmware/nostall/events.py): a bounded ring kept once for every follower, what a follower
# coming back gets, and events as bytes. Runs on CPython and on MicroPython.

from nostall.channel import Channel
from nostall.events import event_bytes


class Follower:
    def __init__(self):
        self.woken = 0

    def notify(self):
        self.woken += 1


def test_the_ring_is_bounded_in_messages_and_bytes():
    c = Channel(ring=3, ring_bytes=100)
    for i in range(10):
        c.publish("m%d" % i)
    assert [m[2] for m in c.messages] == ["m7", "m8", "m9"]
    c.publish("x" * 60)
    c.publish("y" * 60)  # 120 bytes with the one before: the ring keeps the newest only
    assert [m[0] for m in c.messages] == [12]
    c.publish("z" * 500)  # larger than ring_bytes on its own: still kept, as the newest
    assert [m[0] for m in c.messages] == [13]


def test_a_broadcast_is_kept_once_whatever_the_number_of_followers():
    one, many = Channel(ring=4), Channel(ring=4)
    followers = [Follower() for _ in range(50)]
    one.follow(Follower())
    for f in followers:
        many.follow(f)
        many.follow(f)  # following twice is following once
    for i in range(20):
        one.publish("state %d" % i)
        many.publish("state %d" % i)
    assert one.messages == many.messages and len(many.messages) == 4
    assert len(many.followers) == 50 and all(f.woken == 20 for f in followers)
    many.unfollow(followers[0])
    many.unfollow(followers[0])
    many.publish("after")
    assert followers[0].woken == 20 and followers[1].woken == 21


def test_since_gives_what_a_follower_has_not_sent():
    c = Channel(ring=3)
    assert c.since(0) == ()
    for i in range(1, 6):
        c.publish("m%d" % i, event="tick" if i % 2 else None)
    assert [m[0] for m in c.since(3)] == [4, 5]
    assert [m[0] for m in c.since(2)] == [3, 4, 5]  # just within the ring: nothing lost
    assert [m[0] for m in c.since(1)] == [5]  # 2 fell out: only the newest, not a partial backlog
    assert c.since(5) == () and c.since(99) == ()
    assert c.since(4)[0] == (5, "tick", "m5")


def test_state_channel_sends_only_the_newest():
    c = Channel()
    for i in range(5):
        c.publish(str(i))
    assert list(c.since(0)) == [(5, None, "4")] and c.last_id == 5


def test_event_bytes():
    assert event_bytes(7, None, "x") == b"id: 7\ndata: x\n\n"
    assert event_bytes(8, "temp", "a\nb") == b"id: 8\nevent: temp\ndata: a\ndata: b\n\n"
    assert event_bytes(9, None, b"raw") == b"id: 9\ndata: raw\n\n"
    assert event_bytes(10, None, "\u00e9") == b"id: 10\ndata: \xc3\xa9\n\n"
