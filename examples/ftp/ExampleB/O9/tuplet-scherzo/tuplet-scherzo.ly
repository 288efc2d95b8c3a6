\version "2.24.0"

\header {
  title = "Scherzino"
  composer = "Example Composer B"
  opus = "Op. 9"

  mutopiatitle = "Scherzino"
  mutopiacomposer = "ExampleB"
  mutopiaopus = "O 9"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Romantic"
  license = "Creative Commons Attribution-ShareAlike 4.0"
  maintainer = "msmd-builder"

  tagline = ##f
}

% Triplets (\tuplet 3/2), dotted rhythms, a bar repeated with
% \repeat percent, and short two-note tremolos (\repeat tremolo).

upper = \relative c' {
  \clef treble
  \key a \minor
  \time 4/4
  \tempo "Scherzando"

  \tuplet 3/2 { e8\p( a c } \tuplet 3/2 { b a gis) } a4-. e-. |  % 1
  d'8.( c16 b8. a16) gis4-. e-. |                                % 2
  \repeat percent 2 { c'8.( b16 a8. gis16) a4-. r | }            % 3-4
  \tuplet 3/2 { d8\mf( f a } \tuplet 3/2 { gis f e) } f4-. d-. |  % 5
  \tuplet 3/2 { c8( e a } b8. a16) gis2 |                         % 6
  \repeat tremolo 4 { a,16\< c } \repeat tremolo 4 { gis16 b\! } | % 7
  a2 r |                                                          % 8
  \tuplet 3/2 { g8\p( c e } \tuplet 3/2 { g e c) } d8.( e16 f8. d16) | % 9
  e8.( c16 g8. c16) e4 r |                                        % 10
  \tuplet 3/2 { f8\<( e d } \tuplet 3/2 { c b a } \tuplet 3/2 { gis a b } \tuplet 3/2 { c d e)\! } | % 11
  a,4 e'8.( c16) \tuplet 3/2 { b8( c d) } gis,4 |                 % 12
  a2 r \bar "|."                                                  % 13
}

lower = \relative c {
  \clef bass
  \key a \minor
  \time 4/4

  a4-. r <c e>-. r |                                               % 1
  d4-. r <e gis b>-. r |                                          % 2
  \repeat percent 2 { <a, e'>4-. <a e'>-. <a e'>-. r | }          % 3-4
  d4-. r <d f a>-. r |                                            % 5
  a4-. r e'2 |                                                    % 6
  <a, e'>2 <e b'> |                                               % 7
  <a e'>2 r |                                                     % 8
  c4-. <e g>-. b-. <d f g>-. |                                    % 9
  c4-. <e g>-. c-. r |                                            % 10
  d4 a e' e, |                                                    % 11
  a4 c e e, |                                                     % 12
  <a e' a>2 r \bar "|."                                           % 13
}

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upper
    \new Staff = "lower" \lower
  >>
  \layout { }
  \midi {
    \tempo 4 = 108
  }
}
