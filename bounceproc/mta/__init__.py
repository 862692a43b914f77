"""The bundled sending core's adapters: config reader, spool, listener, DNS, delivery, acct writer.

Adapter layer. The rules (config model, schedules, queue states, records) are in
bounceproc/domain/mta/; this package moves bytes between files, sockets and those rules.
"""
