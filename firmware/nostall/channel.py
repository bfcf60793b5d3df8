# A broadcast to any number of WebSocket and event-stream clients, with memory independent of
# how many follow: the last messages are kept once, in a bounded ring, and each follower keeps
# only the id of the last one it sent. publish() wakes the followers' connections; each sends
# what it has not sent yet, from its own task. A client too slow to keep up skips what fell out
# of the ring (a state channel, ring 1, always sends only the newest state): a slow consumer
# never holds a backlog.
#
# STATUS is the server's own channel: the /status figures, published every second while
# someone follows it (the dashboard's WebSocket and event stream).

from micropython import const


_RING_BYTES = const(4096)  # a channel's kept messages at most: a few /status documents' worth


class Channel:
    """Messages (str) with ids 1, 2, 3...; the last `ring` of them (at most `ring_bytes`) kept.

    Example::

        temps = Channel(ring=8)
        temps.publish('{"celsius": 21.5}', event="temp")
        app.events("/events/temps", temps)     # an event stream route
    """

    def __init__(self, ring=1, ring_bytes=_RING_BYTES):
        self.ring = ring
        self.ring_bytes = ring_bytes
        self.last_id = 0
        self.messages = []  # (id, event or None, data), oldest first
        self.followers = []  # the connections to tell (each has .notify())
        self.extra = _nothing  # STATUS: a callable giving the app's own figures (dict) to add

    def publish(self, data, event=None):
        self.last_id += 1
        m = self.messages
        m.append((self.last_id, event, data))
        size = 0
        for i in range(len(m) - 1, -1, -1):
            size += len(m[i][2])
            if len(m) - i > self.ring or (size > self.ring_bytes and i < len(m) - 1):
                del m[: i + 1]
                break
        for f in self.followers:
            f.notify()
        return self.last_id

    def since(self, last_id):
        """The kept messages after last_id (the newest only when last_id fell out of the ring:
        what was in between is gone)."""
        m = self.messages
        if not m or m[-1][0] <= last_id:
            return ()
        if last_id < m[0][0] - 1:
            return m[-1:]
        for i in range(len(m)):
            if m[i][0] > last_id:
                return m[i:]
        return ()

    def follow(self, conn):
        if conn not in self.followers:
            self.followers.append(conn)

    def unfollow(self, conn):
        if conn in self.followers:
            self.followers.remove(conn)


def _nothing():
    return {}


STATUS = Channel()
