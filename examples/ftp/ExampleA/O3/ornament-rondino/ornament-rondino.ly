\version "2.24.0"

\header {
  title = "Rondino"
  subtitle = "for harpsichord"
  composer = "Example Composer A"
  opus = "Op. 3"

  mutopiatitle = "Rondino"
  mutopiacomposer = "ExampleA"
  mutopiaopus = "O 3"
  mutopiainstrument = "Harpsichord"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Baroque"
  license = "Creative Commons Attribution-ShareAlike 4.0"
  maintainer = "msmd-builder"

  tagline = ##f
}

% Grace notes (\grace, \acciaccatura, \appoggiatura) and ornaments
% written as articulations (\trill, \mordent, \prall, \turn).

upper = \relative c'' {
  \clef treble
  \key d \major
  \time 2/4

  \grace e16 d8 a fis a |              % 1
  d4\mordent e8 fis |                  % 2
  \acciaccatura a8 g8 fis e d |        % 3
  \appoggiatura d8 cis4 r8 a |         % 4
  b8 d \grace { cis16 d } e8 g |       % 5
  fis4\prall e8 d |                    % 6
  e8 fis16 g a8 cis, |                 % 7
  d4 r |                               % 8
  a'8 fis d fis |                      % 9
  g4\trill fis8 e |                    % 10
  \acciaccatura e8 d8 cis b cis |      % 11
  \appoggiatura cis8 b4 a |            % 12
  d8 fis \grace g16 fis8 e |           % 13
  d8\turn b' a g |                     % 14
  fis8 e16 d e4\trill |                % 15
  d4 r \bar "|."                       % 16
}

lower = \relative c {
  \clef bass
  \key d \major
  \time 2/4

  \grace s16 d4 fis |                  % 1  (grace skip keeps the staves in step)
  b,4 a |                              % 2
  g4 a |                               % 3
  a8 a' g e |                           % 4
  g4 e |                               % 5
  a4 fis |                             % 6
  g4 a |                               % 7
  d,8 a' d,4 |                         % 8
  d'4 d, |                             % 9
  e4 a |                               % 10
  b4 fis |                             % 11
  e4 a |                               % 12
  d4 a |                               % 13
  b4 g |                               % 14
  a4 a, |                              % 15
  d4 r \bar "|."                       % 16
}

\score {
  \new PianoStaff <<
    \set PianoStaff.midiInstrument = "harpsichord"
    \new Staff = "upper" \upper
    \new Staff = "lower" \lower
  >>
  \layout { }
  \midi {
    \tempo 4 = 96
  }
}
