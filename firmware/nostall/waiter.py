# Socket waits that cost no task and no allocation: one Waiter per connection (and one for the
# accept loop), reused for every readiness wait, read and write. MicroPython awaits anything with
# __iter__/__next__, as asyncio's own SingletonGenerator is awaited.
# pyright: reportGeneralTypeIssues=false
# (it says a Waiter "is not awaitable": see above)

from asyncio import core  # pyright: ignore[reportAttributeAccessIssue] - MicroPython's asyncio.core
from micropython import const

_ioq = core._io_queue  # the one place asyncio's I/O wait is reached; streams use it the same way

# const(): the compiler puts the number in place of the name (no lookup per wait)
_READABLE = const(0)
_RECV = const(1)
_SEND = const(2)
DONE = ()  # what send() returns when everything went out at once (nothing to await)


class Waiter:
    """await w.readable(sock); n = await w.recv(sock, space) (0: EOF, None: woken by w.wake());
    await w.send(sock, data).

    Reused for every wait, as asyncio's own SingletonGenerator is (MicroPython awaits anything
    with __iter__/__next__), so a wait allocates nothing. on_progress() is called when a send
    that had to wait moves on (a slow but steady reader is not stalled).
    """

    def __init__(self, on_progress=None):
        self.on_progress = on_progress
        self.sock = None
        self.op = _READABLE
        self.data = b""
        self.off = 0
        self.armed = False
        self.task = None  # the task parked in recv(), for wake()
        self.woken = False

    def wake(self):
        """The task in recv() returns None now (no bytes): a WebSocket or an event stream has
        something to send, or a ping or heartbeat is due. Not waiting there: the next recv()
        returns None at once."""
        self.woken = True
        t = self.task
        if t is not None and t.data is _ioq:
            # as Task.cancel() does, without the exception: off the I/O queue, onto the run queue
            _ioq.remove(t)
            core._task_queue.push(t)
            self.task = None

    def clear(self):
        """Forget the socket and what was being sent: a connection that ends mid-send (a client
        that stopped reading) must not keep its last piece in its slot until the slot is reused."""
        self.sock = None
        self.data = b""
        self.armed = False
        self.task = None
        self.woken = False

    def readable(self, sock):
        self.sock = sock
        self.op = _READABLE
        self.armed = True
        return self

    def recv(self, sock, space):
        self.sock = sock
        self.op = _RECV
        self.data = space
        self.armed = True
        return self

    def send(self, sock, data):
        n = sock.write(data)
        if n == len(data):
            # most answers fit the socket's buffer: nothing to wait for, and awaiting an empty
            # tuple ends at once without raising StopIteration (MicroPython awaits any iterable)
            return DONE
        self.sock = sock
        self.op = _SEND
        self.data = data
        self.off = n or 0
        self.armed = True
        return self

    def __iter__(self):
        return self

    __await__ = __iter__  # the CPython spelling, for type checkers

    def __next__(self):
        op = self.op
        if self.armed:
            self.armed = False
            if op == _RECV:
                if self.woken:
                    self.woken = False
                    raise StopIteration(None)
                self.task = core.cur_task
        elif op == _RECV:
            n = self.sock.readinto(self.data)
            if n is not None:  # bytes first; a wake that came too stays for the next recv()
                self.task = None
                self.data = b""
                raise StopIteration(n)
            if self.woken:
                self.woken = False
                self.task = None
                self.data = b""
                raise StopIteration(None)
        elif op == _SEND:
            data = self.data
            if self.off < len(data):
                n = self.sock.write(memoryview(data)[self.off :])
                if n:
                    self.off += n
                    if self.on_progress is not None:
                        self.on_progress()
            if self.off >= len(data):
                self.data = b""
                raise StopIteration
        else:
            raise StopIteration
        if op == _SEND:
            _ioq.queue_write(self.sock)
        else:
            _ioq.queue_read(self.sock)
        return None


async def drain(io, sock, buf, budget):
    """Read and drop what the peer sends until its EOF: True at EOF, False when budget bytes
    came first. A reset raises OSError; the caller bounds the time."""
    while budget > 0:
        n = await io.recv(sock, buf)
        if n == 0:
            return True
        budget -= n
    return False
