\version "2.24.0"

\header {
  title = "Minuet in G"
  composer = "Example Composer A"
  opus = "Op. 1, No. 1"

  mutopiatitle = "Minuet in G"
  mutopiacomposer = "ExampleA"
  mutopiaopus = "O 1"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Classical"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

% First section: repeated, with first and second endings.
% Second section: a plain repeated section (no alternatives).

upper = \relative c'' {
  \clef treble
  \key g \major
  \time 3/4

  \repeat volta 2 {
    b4\p d g |                         % 1
    fis8( e) d4 c |                    % 2
    b4 a8( b) c( d) |                  % 3
    e4 d2 |                            % 4
    e8( fis g4) c, |                   % 5
    d8( c b4) a |                      % 6
  }
  \alternative {
    { b8( c d4) fis, | a2. | }         % 7a 8a
    { a8( b c4) fis, | g2. | }         % 7b 8b
  }

  \repeat volta 2 {
    a4\mf d fis |                      % 9
    e8( d cis4) a |                    % 10
    b8( cis d4) e |                    % 11
    fis8( e) d2 |                      % 12
    d4\p c b |                         % 13
    e4 c a |                           % 14
    b8( a g4) fis |                    % 15
    g2. |                              % 16
  }
}

lower = \relative c' {
  \clef bass
  \key g \major
  \time 3/4

  \repeat volta 2 {
    g2 b,4 |                           % 1
    c2. |                              % 2
    b2 a4 |                            % 3
    c4 d2 |                            % 4
    c2 a4 |                            % 5
    b2 d4 |                            % 6
  }
  \alternative {
    { g,2 d'4 | <d a'>2. | }           % 7a 8a
    { d2 d,4 | g2. | }                 % 7b 8b
  }

  \repeat volta 2 {
    d'2 fis4 |                         % 9
    a,2 cis4 |                         % 10
    g2 a4 |                            % 11
    d4 a d, |                          % 12
    fis2. |                            % 13
    a2 c4 |                            % 14
    d2 d,4 |                           % 15
    g2. |                              % 16
  }
}

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upper
    \new Staff = "lower" \lower
  >>
  \layout { }
  \midi {
    \tempo 4 = 120
  }
}
