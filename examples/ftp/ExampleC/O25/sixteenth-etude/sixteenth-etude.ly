\version "2.24.0"

\header {
  title = "Study in Sixteenths"
  composer = "Example Composer C"
  opus = "Op. 25, No. 1"

  mutopiatitle = "Study in Sixteenths"
  mutopiacomposer = "ExampleC"
  mutopiaopus = "O 25"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Romantic"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

\paper {
  #(set-paper-size "a4")
  ragged-last-bottom = ##t
}

% A multi-page study: 56 bars of broken-chord sixteenths in the right
% hand, each figure written once and played twice with \repeat unfold.

upper = {
  \clef treble
  \key c \major
  \time 4/4
  \tempo "Allegro moderato"

  <>\p \repeat unfold 2 { c'16 g' e' g' c'' g' e' g' } |  % 1
  \repeat unfold 2 { c'16 a' e' a' c'' a' e' a' } |  % 2
  \repeat unfold 2 { c'16 a' f' a' d'' a' f' a' } |  % 3
  \repeat unfold 2 { b16 f' d' f' g' f' d' f' } |  % 4
  \repeat unfold 2 { c'16 g' e' g' c'' g' e' g' } |  % 5
  \repeat unfold 2 { c'16 a' f' a' c'' a' f' a' } |  % 6
  \repeat unfold 2 { b16 f' d' f' g' f' d' f' } |  % 7
  <e' g' c''>4 g'8 e' c'2 |  % 8

  <>\mf \repeat unfold 2 { c'16 e' a' c'' a' e' c' e' } |  % 9
  \repeat unfold 2 { c'16 d' fis' a' fis' d' c' d' } |  % 10
  \repeat unfold 2 { b16 d' g' b' g' d' b d' } |  % 11
  \repeat unfold 2 { b16 d' g' b' g' d' b d' } |  % 12
  \repeat unfold 2 { b16 e' g' b' g' e' b e' } |  % 13
  \repeat unfold 2 { cis'16 e' g' a' g' e' cis' e' } |  % 14
  \repeat unfold 2 { c'16 d' fis' a' fis' d' c' d' } |  % 15
  <d' g' b'>4 d''8 b' g'2 |  % 16

  <>\p \repeat unfold 2 { b16 d' g' b' b d' g' b' } |  % 17
  \repeat unfold 2 { c'16 e' g' c'' c' e' g' c'' } |  % 18
  \repeat unfold 2 { c'16 e' a' c'' c' e' a' c'' } |  % 19
  \repeat unfold 2 { c'16 d' fis' a' c' d' fis' a' } |  % 20
  \repeat unfold 2 { b16 d' g' b' b d' g' b' } |  % 21
  \repeat unfold 2 { b16 e' g' b' b e' g' b' } |  % 22
  \repeat unfold 2 { c'16 e' a' c'' c' e' a' c'' } |  % 23
  <d' f' g' b'>2 r2 |  % 24

  <>\f \repeat unfold 2 { c''16 a' e' c' e' a' c'' a' } |  % 25
  \repeat unfold 2 { d''16 a' f' d' f' a' d'' a' } |  % 26
  \repeat unfold 2 { gis'16 e' d' b d' e' gis' e' } |  % 27
  \repeat unfold 2 { c''16 a' e' c' e' a' c'' a' } |  % 28
  \repeat unfold 2 { c''16 a' f' c' f' a' c'' a' } |  % 29
  \repeat unfold 2 { d''16 a' f' d' f' a' d'' a' } |  % 30
  \repeat unfold 2 { gis'16 e' d' b d' e' gis' e' } |  % 31
  <c' e' a'>4 e''8 c'' a'2 |  % 32

  <>\mf \repeat unfold 2 { d'16 a' f' a' d'' a' f' a' } |  % 33
  \repeat unfold 2 { b16 f' d' f' g' f' d' f' } |  % 34
  \repeat unfold 2 { c'16 g' e' g' c'' g' e' g' } |  % 35
  \repeat unfold 2 { c'16 a' f' a' c'' a' f' a' } |  % 36
  \repeat unfold 2 { b16 f' d' f' b' f' d' f' } |  % 37
  \repeat unfold 2 { b16 e' d' e' gis' e' d' e' } |  % 38
  \repeat unfold 2 { c'16 a' e' a' c'' a' e' a' } |  % 39
  \repeat unfold 2 { b16 f' d' f' g' f' d' f' } |  % 40

  <>\p \repeat unfold 2 { e'16 g' c'' e'' c'' g' e' g' } |  % 41
  \repeat unfold 2 { d'16 f' g' b' g' f' d' f' } |  % 42
  \repeat unfold 2 { e'16 g' c'' e'' c'' g' e' g' } |  % 43
  <>\< \repeat unfold 2 { d'16 f' g' b' g' f' d' f' } |  % 44
  \repeat unfold 2 { f'16 a' c'' d'' c'' a' f' a' } |  % 45
  \repeat unfold 2 { d'16 f' g' b' g' f' d' f' } |  % 46
  \repeat unfold 2 { f'16 a' c'' f'' c'' a' f' a' } |  % 47
  \repeat unfold 2 { d'16 f' g' b' g' f' d' f' } |  % 48

  <>\f \repeat unfold 2 { c'16 e' g' c'' c' e' g' c'' } |  % 49
  \repeat unfold 2 { c'16 f' a' c'' c' f' a' c'' } |  % 50
  \repeat unfold 2 { d'16 f' a' d'' d' f' a' d'' } |  % 51
  \repeat unfold 2 { b16 d' f' g' b d' f' g' } |  % 52
  \repeat unfold 2 { c'16 f' a' c'' c' f' a' c'' } |  % 53
  \repeat unfold 2 { d'16 f' g' b' d' f' g' b' } |  % 54
  \repeat unfold 2 { c'16 e' g' c'' c' e' g' c'' } |  % 55
  <e' g' c''>1\fermata \bar "|."  % 56
}

lower = {
  \clef bass
  \key c \major
  \time 4/4

  c4 <e g> c <e g> |  % 1
  a,4 <e a> a, <e a> |  % 2
  d4 <f c'> d <f c'> |  % 3
  g,4 <f g> g, <f g> |  % 4
  c4 <e g> c <e g> |  % 5
  f,4 <c f> f, <c f> |  % 6
  g,4 <f g> g, <f g> |  % 7
  c4 g, c,2 |  % 8

  a,4 <e a> a, <e a> |  % 9
  d4 <fis c'> d <fis c'> |  % 10
  g,4 <d g> g, <d g> |  % 11
  g,4 <d g> g, <d g> |  % 12
  e4 <g b> e <g b> |  % 13
  a,4 <e g> a, <e g> |  % 14
  d4 <fis c'> d <fis c'> |  % 15
  g,4 d g,2 |  % 16

  g,4 <d g> g, <d g> |  % 17
  c4 <e g> c <e g> |  % 18
  a,4 <e a> a, <e a> |  % 19
  d4 <fis c'> d <fis c'> |  % 20
  g,4 <d g> g, <d g> |  % 21
  e4 <g b> e <g b> |  % 22
  a,4 <e a> a, <e a> |  % 23
  g,2 r2 |  % 24

  a,4 <e a> a, <e a> |  % 25
  d4 <f a> d <f a> |  % 26
  e4 <gis d'> e <gis d'> |  % 27
  a,4 <e a> a, <e a> |  % 28
  f,4 <c f> f, <c f> |  % 29
  d4 <f a> d <f a> |  % 30
  e4 <gis d'> e <gis d'> |  % 31
  a,4 e a,2 |  % 32

  d4 <f a> d <f a> |  % 33
  g,4 <f g> g, <f g> |  % 34
  c4 <e g> c <e g> |  % 35
  f,4 <c f> f, <c f> |  % 36
  b,4 <d f> b, <d f> |  % 37
  e4 <gis d'> e <gis d'> |  % 38
  a,4 <e a> a, <e a> |  % 39
  g,4 <f g> g, <f g> |  % 40

  g,4 <e g> g, <e g> |  % 41
  g,4 <f b> g, <f b> |  % 42
  g,4 <e g> g, <e g> |  % 43
  g,4 <f b> g, <f b> |  % 44
  g,4 <f c'> g, <f c'> |  % 45
  g,4 <f b> g, <f b> |  % 46
  g,4 <f a> g, <f a> |  % 47
  g,4 <f b> g, <f b> |  % 48

  c4 <e g> c <e g> |  % 49
  f,4 <c f> f, <c f> |  % 50
  d4 <f a> d <f a> |  % 51
  g,4 <f g> g, <f g> |  % 52
  c4 <f a> c <f a> |  % 53
  c4 <f g> c <f g> |  % 54
  c4 <e g> c <e g> |  % 55
  <c, c>1\fermata \bar "|."  % 56
}

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upper
    \new Staff = "lower" \lower
  >>
  \layout { }
  \midi {
    \tempo 4 = 100
  }
}
