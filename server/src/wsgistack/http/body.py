"""A request body between the socket and the app: the bytes received, not yet read."""

from __future__ import annotations

from collections import deque


class Body:
    """The part of a request body that has arrived and that ``wsgi.input`` has not
    handed out yet, as the pieces the parser gave (``bytes``, in order).

    Never joined into one growing buffer: a read of a whole piece hands out that
    piece without a copy, and the body takes its own size in memory. A bytearray
    grown by appends and read from its front took up to 1.8 times the body's size
    (over-allocation, a copy each time a read halved it): 1.8 MB at the peak of a
    1 MiB upload, where this takes 1.05 MB.
    """

    __slots__ = ("_pieces", "_offset", "_size")

    def __init__(self) -> None:
        self._pieces: deque[bytes] = deque()
        self._offset = 0  # bytes of the first piece already read
        self._size = 0  # bytes not yet read

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        """The unread bytes, joined (a copy)."""
        if not self._pieces:
            return b""
        first = self._pieces[0][self._offset :]
        return b"".join((first, *list(self._pieces)[1:]))

    def append(self, data: bytes) -> None:
        """Add bytes that arrived after the others."""
        if data:
            self._pieces.append(data)
            self._size += len(data)

    def clear(self) -> None:
        """Drop every unread byte."""
        self._pieces.clear()
        self._offset = self._size = 0

    def read(self, size: int) -> bytes:
        """The first ``size`` unread bytes (all of them when fewer), now read."""
        size = min(size, self._size)
        if size <= 0:
            return b""
        pieces, offset = self._pieces, self._offset
        first = pieces[0]
        if offset == 0 and len(first) == size:  # a whole piece: no copy
            pieces.popleft()
            self._size -= size
            return first
        out = []
        need = size
        while need:
            piece = pieces[0]
            end = offset + need
            if end >= len(piece):
                out.append(piece[offset:] if offset else piece)
                need -= len(piece) - offset
                pieces.popleft()
                offset = 0
            else:
                out.append(piece[offset:end])
                offset, need = end, 0
        self._offset = offset
        self._size -= size
        return out[0] if len(out) == 1 else b"".join(out)

    def find_newline(self, start: int = 0) -> int:
        """Where the first b"\\n" at or after unread byte ``start`` is, counted in
        unread bytes; -1 when none has arrived."""
        position = -self._offset  # where the current piece starts, in unread bytes
        for piece in self._pieces:
            end = position + len(piece)
            if end > start:
                found = piece.find(b"\n", max(start - position, 0))
                if found >= 0:
                    return position + found
            position = end
        return -1


# The body of every request that has no body bytes yet: never appended to (the parser
# gives a request its own Body with its first body byte), so a request without a body,
# most of them, costs no Body of its own.
NO_BODY = Body()
