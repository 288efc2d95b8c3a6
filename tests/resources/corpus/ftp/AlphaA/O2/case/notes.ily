notes = { c'2 d' }
