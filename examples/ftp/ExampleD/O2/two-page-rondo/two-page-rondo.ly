\version "2.24.0"

\header {
  title = "Rondino"
  subtitle = "over a page turn"
  composer = "Example Composer D"
  opus = "Op. 2"

  mutopiatitle = "Rondino"
  mutopiacomposer = "ExampleD"
  mutopiaopus = "O 2"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Classical"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

% Two pages: the page turn (an explicit \pageBreak, so that the layout does
% not depend on paper size) falls inside a repeated section and inside a
% tied note, so the repeat jumps back from page 2 to page 1 and the tie
% continues on the next page.

upper = \relative c'' {
  \clef treble
  \key f \major
  \time 2/4
  \tempo "Allegretto"

  \repeat volta 2 {
    c8\p a f a |                       % 1
    bes8 g e g |                       % 2
    a8 f c f |                         % 3
    g4 c, |                            % 4
    d8 f bes d |                       % 5
    c8 a f a |                         % 6
    g8 e c e |                         % 7
    f4 r | \break                      % 8
    a8 c f c |                         % 9
    bes8 d g, bes |                    % 10
    a8 c f, a |                        % 11
    g2~ | \pageBreak                   % 12
    g8 bes e, g |                      % 13
    f8 a d, f |                        % 14
    e8 g c, e |                        % 15
  }
  \alternative {
    { f4 r | }                         % 16a
    { f4 c'\f | }                      % 16b
  }
  d8 bes g bes |                       % 17
  c8 a f a |                           % 18
  bes8 g e g |                         % 19
  f2 \bar "|."                         % 20
}

lower = \relative c {
  \clef bass
  \key f \major
  \time 2/4

  \repeat volta 2 {
    f4 c |                             % 1
    g'4 c, |                           % 2
    f4 a |                             % 3
    c4 c, |                            % 4
    bes4 d |                           % 5
    f4 c |                             % 6
    c4 bes' |                          % 7
    a4 r |                             % 8
    f4 a |                             % 9
    g4 bes |                           % 10
    f4 c |                             % 11
    c4 e |                             % 12
    c4 bes' |                          % 13
    a4 bes |                           % 14
    c4 c, |                            % 15
  }
  \alternative {
    { f4 r | }                         % 16a
    { f4 a | }                         % 16b
  }
  bes4 g |                             % 17
  a4 f |                               % 18
  c4 c, |                              % 19
  f2 \bar "|."                         % 20
}

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upper
    \new Staff = "lower" \lower
  >>
  \layout { }
  \midi {
    \tempo 4 = 96
  }
}
