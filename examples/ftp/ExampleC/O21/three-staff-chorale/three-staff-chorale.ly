\version "2.24.0"

\header {
  title = "Chorale"
  subtitle = "on three staves"
  composer = "Example Composer C"
  opus = "Op. 21"

  mutopiatitle = "Chorale on three staves"
  mutopiacomposer = "ExampleC"
  mutopiaopus = "O 21"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Baroque"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

% A four-part chorale laid out on three staves from start to end:
% soprano and alto on the upper staff, tenor on the middle staff,
% and the bass line on a third staff below the piano staff.

global = {
  \key e \minor
  \time 4/4
}

soprano = {
  b'4 b' a' g' |                       % 1
  fis'4 g' a' a' |                     % 2
  b'4 c'' b' a' |                      % 3
  g'1\fermata |                        % 4
  d''4 d'' c'' b' |                    % 5
  a'4 b' c'' b' |                      % 6
  a'4 g' fis' e' |                     % 7
  fis'1\fermata |                      % 8
  g'4 a' b' c'' |                      % 9
  b'4 a' g' fis' |                     % 10
  g'4 e' a' fis' |                     % 11
  e'1\fermata \bar "|."                % 12
}

alto = {
  g'4 fis' e' e' |                     % 1
  dis'4 e' e' fis' |                   % 2
  g'4 g' g' fis' |                     % 3
  d'1 |                                % 4
  g'4 fis' e' g' |                     % 5
  fis'4 g' a' g' |                     % 6
  e'4 e' dis' e' |                     % 7
  dis'1 |                              % 8
  e'4 fis' g' g' |                     % 9
  g'4 e' e' dis' |                     % 10
  e'4 c' e' dis' |                     % 11
  b1 \bar "|."                         % 12
}

tenor = {
  e'4 d' c' b |                        % 1
  a4 b c' d' |                         % 2
  d'4 e' d' d' |                       % 3
  b1 |                                 % 4
  b4 a a d' |                          % 5
  d'4 d' e' d' |                       % 6
  c'4 b b b |                          % 7
  b1 |                                 % 8
  b4 c' d' e' |                        % 9
  d'4 c' b b |                         % 10
  b4 a c' b |                          % 11
  g1 \bar "|."                         % 12
}

bass = {
  e4 d c b, |                          % 1
  b,4 e c d |                          % 2
  g,4 c d d |                          % 3
  g,1\fermata |                        % 4
  g4 d a, g, |                         % 5
  d4 g a g |                           % 6
  c4 e b, g, |                         % 7
  b,1\fermata |                        % 8
  e4 c g, c |                          % 9
  g,4 a, e b, |                        % 10
  e4 a, c b, |                         % 11
  e,1\fermata \bar "|."                % 12
}

\score {
  <<
    \new PianoStaff <<
      \new Staff = "upper" << \global \clef treble { \voiceOne \soprano } \new Voice { \voiceTwo \alto } >>
      \new Staff = "lower" << \global \clef bass \tenor >>
    >>
    \new Staff = "pedal" \with { instrumentName = "Ped." } << \global \clef bass \bass >>
  >>
  \layout { }
  \midi {
    \tempo 4 = 60
  }
}
