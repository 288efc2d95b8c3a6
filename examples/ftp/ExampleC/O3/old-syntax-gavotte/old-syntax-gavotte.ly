\version "2.10.0"

% Written in LilyPond 2.10 syntax on purpose.  convert-ly has to upgrade
% the triplets (times), the Scheme calls for the accidental style and the
% octavation bracket, the arpeggio direction command, the old override
% syntax (#'padding) and the tempoWholesPerMinute setting of the MIDI block.

\header {
  title = "Gavotte"
  composer = "Example Composer C"
  opus = "Op. 3"

  mutopiatitle = "Gavotte"
  mutopiacomposer = "ExampleC"
  mutopiaopus = "O 3"
  mutopiainstrument = "Piano"
  date = "2025"
  source = "Written for msmd-builder"
  style = "Classical"
  license = "Public Domain"
  maintainer = "msmd-builder"

  tagline = ##f
}

#(set-global-staff-size 19)

upper = {
  \clef treble
  \key f \major
  \time 2/2
  #(set-accidental-style 'modern)
  \override TextScript #'padding = #1.5

  \repeat volta 2 {
    \partial 2 a'4\p^\markup { \bold "Moderato" } bes' |
    c''2 f'4 g' |                                     % 1
    a'4 bes' \times 2/3 { c''8 d'' c'' } bes'4 |      % 2
    a'2 g'4 f' |                                      % 3
    e'2 c'4 d' |                                      % 4
    e'4 f' g' a' |                                    % 5
    bes'4 a' \times 2/3 { g'8 a' g' } f'4 |           % 6
    e'4 c' d' e' |                                    % 7
    f'2                                               % 8
  }
  \repeat volta 2 {
    c''4\mf d'' |
    e''4 c'' g' c'' |                                 % 9
    f''2 e''4 d'' |                                   % 10
    #(set-octavation 1)
    c'''4 a'' f''' c''' |                             % 11
    bes''4 g'' e''' bes'' |                           % 12
    #(set-octavation 0)
    a''4 f'' \times 2/3 { g''8 a'' g'' } f''4 |       % 13
    e''4 c'' d'' e'' |                                % 14
    f''4 c'' \times 2/3 { a'8 bes' a' } g'4 |          % 15
    f'2                                               % 16
  }
}

lower = {
  \clef bass
  \key f \major
  \time 2/2

  \repeat volta 2 {
    \partial 2 f2 |
    f,4 a, c a, |                                     % 1
    f4 d c e |                                        % 2
    f2 bes,4 a, |                                     % 3
    c2 c4 bes, |                                      % 4
    c4 f e f |                                        % 5
    d4 f c a, |                                       % 6
    c4 e bes, c |                                     % 7
    f,2                                               % 8
  }
  \repeat volta 2 {
    a,4 bes, |
    \arpeggioUp
    <c g c'>2\arpeggio e2 |                           % 9
    a,2 bes,4 b, |                                    % 10
    c4 f a f |                                        % 11
    c4 e g e |                                        % 12
    f4 d c a, |                                       % 13
    c4 e bes, c |                                     % 14
    a,4 a, f, c |                                     % 15
    f,2                                               % 16
  }
}

\score {
  \new PianoStaff <<
    \new Staff = "upper" \upper
    \new Staff = "lower" \lower
  >>
  \layout { }
  \midi {
    \context {
      \Score
      tempoWholesPerMinute = #(ly:make-moment 120 4)
    }
  }
}
