"""The bundled sending core's pure half: config model, units, schedules, queue states, records.

Domain layer: stdlib only. The adapters that read files, hold sockets and write disks live in
bounceproc/mta/.
"""
