"""The HTTP edge of the functions: each function's routes declared once (:mod:`.functions`,
:mod:`.v2`), one router (:mod:`.router`), one app that maps errors to statuses (:mod:`.app`), and
the local gateway composed from the same declarations (:mod:`.gateway`)."""
