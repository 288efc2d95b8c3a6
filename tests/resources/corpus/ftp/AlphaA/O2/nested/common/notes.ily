music = \relative c' { c8 d e f g a b c }
