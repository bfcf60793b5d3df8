# The words of what the server says itself, by number, as errno and strerror(): its refusals'
# answers and the errors it raises for an app's mistakes. The reader refuses with
# r.fail(400, _BARE_LF), where _BARE_LF = const(2) is a private name of the module that refuses
# (a const costs nothing), and error_body() (framing.py) loads this module for the answer's text
# at the first refusal; an error raised for a mistake takes its words from say() the same way.
# Each text held as a str from start-up cost every server ~60 B of heap (64-bit .mpy), refused
# or not: 2.3 KB for the 38 refusals alone. Here they are one str, as framing.py's reason
# phrases are (a tuple of str cost 1.8 KB more at the first use). An app's refusals
# (HTTPError(404, "no such sensor")) carry their own words.
#
# A row's number is its place (the first is 1); its comment names the const that stands for it,
# and host_tests/build/test_consts.py checks each module's const of that name has that number.

from micropython import const

_WORDS = const(
    "|request line too long"  # _LINE_TOO_LONG
    "|bare LF line ending"  # _BARE_LF
    "|request head too large"  # _HEAD_TOO_LARGE
    "|bare CR or LF in request head"  # _BARE_CR_LF
    "|control character in request head"  # _CONTROL_CHAR
    "|request head is not UTF-8"  # _HEAD_NOT_UTF8
    "|too many header fields"  # _TOO_MANY_FIELDS
    "|malformed header field"  # _BAD_FIELD
    "|conflicting Content-Length"  # _TWO_LENGTHS
    "|more than one Host"  # _TWO_HOSTS
    "|malformed request line"  # _BAD_REQUEST_LINE
    "|malformed method"  # _BAD_METHOD
    "|method not implemented"  # _UNKNOWN_METHOD
    "|malformed HTTP version"  # _BAD_VERSION
    "|HTTP version not supported"  # _UNKNOWN_VERSION
    "|request target is not UTF-8"  # _TARGET_NOT_UTF8
    "|malformed request target"  # _BAD_TARGET
    "|HTTP/1.1 request without Host"  # _NO_HOST
    "|both Content-Length and Transfer-Encoding"  # _LENGTH_AND_CODING
    "|Transfer-Encoding in HTTP/1.0"  # _CODING_IN_10
    "|malformed Transfer-Encoding"  # _BAD_CODING
    "|transfer coding not implemented"  # _UNKNOWN_CODING
    "|malformed Content-Length"  # _BAD_LENGTH
    "|body too large"  # _BODY_TOO_LARGE
    "|unsupported Expect"  # _BAD_EXPECT
    "|connection is in error"  # _BROKEN
    "|malformed chunk line"  # _BAD_CHUNK_LINE
    "|malformed chunk size"  # _BAD_CHUNK_SIZE
    "|chunk data longer than its size"  # _CHUNK_TOO_LONG
    "|malformed trailer"  # _BAD_TRAILER
    "|body is not UTF-8"  # _BODY_NOT_UTF8
    "|body is not valid JSON"  # _BODY_NOT_JSON
    "|bad percent escape in path"  # _BAD_ESCAPE
    "|handler failed"  # _HANDLER_FAILED
    "|handler returned a bad response"  # _BAD_RESPONSE
    "|handler took too long"  # _HANDLER_TOO_LONG
    "|handler's stream failed"  # _STREAM_FAILED
    "|too many WebSocket and event-stream clients"  # _TOO_MANY_LONG
    "|a Response body is str or bytes, not %s"  # _BODY_TYPE
    "|bad response status %r"  # _BAD_RETURNED_STATUS
    "|a handler's tuple is (body, status[, headers])"  # _BAD_TUPLE
    "|a handler returned %s; return str, bytes, dict, list, None or Response"  # _BAD_RETURN
    "|NaN and Infinity are not JSON"  # _NOT_FINITE
    "|JSON nested deeper than %d"  # _TOO_DEEP
    "|a JSON key is str, not %s"  # _BAD_KEY
    "|%s is not JSON"  # _NOT_JSON
    "|a stream yielded %s, not bytes"  # _BAD_PIECE
    "|a handler yielded a value: to stream, return Response(stream=generator)"  # _YIELDED
    "|bad status %r"  # _BAD_STATUS
    "|refused response header %r"  # _BAD_HEADER
    "|route %r: unknown converter %r"  # _UNKNOWN_CONVERTER
    "|route %r: <path:...> must come last"  # _PATH_NOT_LAST
    "|route %r: unknown method %r"  # _UNKNOWN_ROUTE_METHOD
    "|route %r: stream is the body's limit in bytes"  # _BAD_STREAM_LIMIT
)


def words(n):
    """Row n's words."""
    i = 0
    for _ in range(n):
        i = _WORDS.index("|", i) + 1
    j = _WORDS.find("|", i)
    return _WORDS[i:j] if j >= 0 else _WORDS[i:]


def say(n, *args):
    """Row n's words with args in its %-fields: the message of an error raised for a mistake."""
    w = words(n)
    return w % args if args else w
