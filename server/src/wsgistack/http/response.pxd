# Cython's pure Python mode: the C types of Response's attributes (its
# __slots__) when response.py is compiled (server/setup.py); Python ignores
# this file. __dict__ takes an attribute not declared here, slower.
cdef class Response:
    cdef dict __dict__
    cdef public object conn
    cdef public object request
    cdef public bint keep_alive
    cdef public object draining
    cdef public object status
    cdef public Py_ssize_t status_code
    cdef public str fields
    cdef public bint headers_sent
    cdef public bint continue_sent
    cdef public object content_length
    cdef public bint chunked
    cdef public Py_ssize_t body_bytes
    cdef public bint no_body
