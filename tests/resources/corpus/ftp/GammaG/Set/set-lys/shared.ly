theme = { c'4 d' e' f' }
