%% Re-layouts for a piece whose music LilyPond drew past a page's edge
%% (msmd_builder/lilypond/pages.py; docs/rendering.md).  Loaded after msmd.ily,
%% only when the render stage asks for one, with
%%   #(define msmd-relayout 'NAME)
%% before it.  NAME is one of
%%   lilypond-breaks  the source's own line and page breaks are dropped (\break,
%%                    \noBreak, \pageBreak, \autoLineBreaksOff, system-count,
%%                    systems-per-page, page-count): LilyPond breaks lines and
%%                    pages itself, as its spacing needs.
%%   smaller-staff    the same, and every staff size is 80 % of the piece's own.
%%   breaks-between-bar-lines
%%                    as lilypond-breaks, and a line may also break where there
%%                    is no bar line (a cadenza written without bar lines).
%%   texts-outside-line
%%                    as lilypond-breaks, and texts may reach past the end of
%%                    the line (the paper columns' keep-inside-line off): a
%%                    \fill-line markup over a note is as wide as the line,
%%                    and keeping it inside stretches that line past the
%%                    page's edge.
%% Notes, durations and everything the MIDI plays are untouched; only where
%% systems and pages end changes, and with smaller-staff the size of print.

#(define msmd-relayout-mode (if (defined? 'msmd-relayout) msmd-relayout 'lilypond-breaks))

#(define msmd-relayout-staff-factor (if (eq? msmd-relayout-mode 'smaller-staff) 4/5 1))

#(define msmd-break-properties
   '(line-break-permission page-break-permission page-turn-permission))

#(define (msmd-allow-breaks! music)
   "Turn every break command inside MUSIC into a mere permission, in place.

\\break, \\noBreak, \\pageBreak ... become \\allowBreak-like events, and an
override of a break permission (\\autoLineBreaksOff) becomes 'allow, so the
music's structure stays as it is."
   (if (ly:music? music)
       (for-some-music
        (lambda (m)
          (let ((name (ly:music-property m 'name)))
            (cond
             ((memq name '(LineBreakEvent PageBreakEvent PageTurnEvent))
              (ly:music-set-property! m 'break-permission 'allow))
             ((and (eq? name 'OverrideProperty)
                   (eq? (ly:music-property m 'symbol) 'NonMusicalPaperColumn)
                   (any (lambda (p) (memq p msmd-break-properties))
                        (cons (ly:music-property m 'grob-property #f)
                              (ly:music-property m 'grob-property-path '()))))
              (ly:music-set-property! m 'grob-value 'allow)))
            #f))
        music))
   music)

#(define msmd-fixed-break-variables
   '(system-count systems-per-page max-systems-per-page min-systems-per-page page-count))

#(define (msmd-free-breaks! def)
   "Unset the fixed system and page counts of an output definition."
   (for-each (lambda (name) (ly:output-def-set-variable! def name #f))
             msmd-fixed-break-variables))

#(define (msmd-relayout-score handler)
   (lambda args
     (let ((score (last args)))
       (if (and (ly:score? score) (not (ly:score-error? score)))
           (begin
             (msmd-allow-breaks! (ly:score-music score))
             (for-each msmd-free-breaks! (ly:score-output-defs score)))))
     (apply handler args)))

#(define toplevel-score-handler (msmd-relayout-score toplevel-score-handler))
#(define book-score-handler (msmd-relayout-score book-score-handler))
#(define bookpart-score-handler (msmd-relayout-score bookpart-score-handler))

#(define (msmd-relayout-book handler)
   (lambda (book)
     (msmd-free-breaks! (ly:book-paper book))
     (for-each (lambda (part)
                 (if (ly:output-def? (ly:book-paper part)) (msmd-free-breaks! (ly:book-paper part))))
               (ly:book-book-parts book))
     (handler book)))

#(define toplevel-book-handler (msmd-relayout-book toplevel-book-handler))
#(define book-handler (msmd-relayout-book book-handler))

%% Staff size: every size the piece sets is scaled, and so is the default.
%% The bindings of LilyPond's own module are replaced (for this run only), so a
%% call from a \layout block finds the scaled one too.
#(if (not (= msmd-relayout-staff-factor 1))
     (let* ((lily (resolve-module '(lily)))
            (global (module-ref lily 'set-global-staff-size))
            (in-layout (module-ref lily 'layout-set-staff-size)))
       (module-set! lily 'set-global-staff-size
                    (lambda (size) (global (* msmd-relayout-staff-factor size))))
       (module-set! lily 'layout-set-staff-size
                    (lambda (size) (in-layout (* msmd-relayout-staff-factor size))))
       ((module-ref lily 'set-global-staff-size) 20)))

%% A line may break between bar lines: a long passage without any (cadenzaOn)
%% otherwise runs off the page whatever the staff size.
#(if (eq? msmd-relayout-mode 'breaks-between-bar-lines)
     (ly:parser-include-string
      "\\layout { \\context { \\Score forbidBreakBetweenBarLines = ##f } }"))

%% Texts may reach past the line's end instead of pushing the line past the page.
#(if (eq? msmd-relayout-mode 'texts-outside-line)
     (ly:parser-include-string
      "\\layout { \\context { \\Score \\override PaperColumn.keep-inside-line = ##f \\override NonMusicalPaperColumn.keep-inside-line = ##f } }"))

#(ly:message "msmd: re-layout ~a" msmd-relayout-mode)
