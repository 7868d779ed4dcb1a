"""HTTP/1.1 for the server: parsing requests (``parser``), writing responses
(``response``) and the client connection (``connection``). No WSGI here."""
