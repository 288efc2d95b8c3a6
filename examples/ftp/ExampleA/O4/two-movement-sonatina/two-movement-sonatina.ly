\version "2.24.0"

\header {
  title = "Sonatina in G"
  composer = "Example Composer A"
  opus = "Op. 4"

  mutopiatitle = "Sonatina in G"
  mutopiacomposer = "ExampleA"
  mutopiaopus = "O 4"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Classical"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

% Two movements, each in its own \score block, in one file:
% one PDF and two MIDI files.

%%%%%%%%%%%%%%%% I. Allegro %%%%%%%%%%%%%%%%

upperOne = \relative c'' {
  \clef treble
  \key g \major
  \time 4/4
  \tempo "Allegro"

  g4\f b d2 |                          % 1
  b8( c d e) d4 g, |                   % 2
  a4 c8( b) a4 d |                     % 3
  b2 g |                               % 4
  e'4\p d8( c) b4 a |                  % 5
  g4 fis8( g) a4 d, |                  % 6
  g4\f b8( a) fis4 a |                 % 7
  g2 r \bar "|."                       % 8
}

lowerOne = {
  \clef bass
  \key g \major
  \time 4/4

  g,8 d b, d g, d b, d |               % 1
  g,8 d b, d fis, d a, d |             % 2
  fis,8 d c d fis, d c d |             % 3
  g,8 d b, d g,4 r |                   % 4
  c8 g e g b, g d g |                  % 5
  e8 b g b d a fis a |                 % 6
  d8 b g b d c' fis c' |               % 7
  g,4 d g,2 \bar "|."                  % 8
}

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upperOne
    \new Staff = "lower" \lowerOne
  >>
  \header {
    piece = "I"
  }
  \layout { }
  \midi {
    \tempo 4 = 132
  }
}

%%%%%%%%%%%%%%%% II. Siciliano %%%%%%%%%%%%%%%%

upperTwo = \relative c'' {
  \clef treble
  \key e \minor
  \time 6/8
  \tempo "Siciliano"

  b8.\p( c16 b8) e4 g8 |               % 1
  fis8.( g16 fis8) b,4 dis8 |          % 2
  e8.( fis16 g8) a4 c8 |               % 3
  b4. r4. |                            % 4
  g8.( a16 g8) e4 c8 |                 % 5
  b8.( c16 b8) a4 fis8 |               % 6
  g8.( a16 b8) fis4 dis8 |             % 7
  e4. r4. \bar "|."                    % 8
}

lowerTwo = {
  \clef bass
  \key e \minor
  \time 6/8

  e4. g4. |                            % 1
  dis4. b,4. |                         % 2
  e4. a,4. |                           % 3
  b,4. b,,4. |                         % 4
  c4. e4. |                            % 5
  e4. dis4. |                          % 6
  e4. b,4. |                           % 7
  e,4. r4. \bar "|."                   % 8
}

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upperTwo
    \new Staff = "lower" \lowerTwo
  >>
  \header {
    piece = "II"
    opus = ##f
  }
  \layout { }
  \midi {
    \tempo 4 = 66
  }
}
