# Cython's pure Python mode: the C types of RequestParser's attributes when
# parser.py is compiled (server/setup.py); Python ignores this file. Every
# attribute parser.py sets on a RequestParser is declared here (__dict__ takes
# any other, slower). The bounds that may exceed sys.maxsize stay Python ints.
cdef class RequestParser:
    cdef dict __dict__
    cdef public object limits
    cdef public object requests
    cdef public object error
    cdef public bint stopped
    cdef public object _current
    cdef public bint _head_complete
    cdef public bytearray _url
    cdef public Py_ssize_t _field_count
    cdef public list _fields
    cdef public Py_ssize_t _max_url
    cdef public Py_ssize_t _max_fields
    cdef public Py_ssize_t _max_field_size
    cdef public Py_ssize_t _max_body
    cdef public object _max_request_line
    cdef public object _max_field_line
    cdef public object _in_flight
    cdef public Py_ssize_t _line
    cdef public bint _body_seen
    cdef public object _request_line
    cdef public bint _chunk_lines
    cdef public bint _in_trailers
    cdef public object _body_parser
    cdef public Py_ssize_t _chunk_line
    cdef public object _max_chunk_line
    cdef public object _parser
    cdef public object _data
    cdef public Py_ssize_t _scan
    cdef public bytearray _carry
