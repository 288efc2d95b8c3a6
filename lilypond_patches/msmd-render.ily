%% msmd-builder render hooks, loaded with  lilypond -dinclude-settings=msmd-render.ily
%%
%% Every score that LilyPond would typeset is split into two scores that run in the
%% same LilyPond process:
%%   * a layout score with the music as written (what the PDF shows), and
%%   * a MIDI score built from a deep copy of the same music with every repeat
%%     unfolded (what is heard), using the score's own \midi block, or the \midi
%%     block of a MIDI-only score of the same book, or LilyPond's default.
%% Scores that only have a \midi block (Mutopia's usual \unfoldRepeats companion
%% score) are not rendered themselves; their \midi settings (tempo) are reused.
%% Before the split, every note event gets a unique integer 'msmd-id, kept by the
%% deep copy, so each performed note can be traced to the event that printed it.
%% Source-level \repeat unfold is expanded into independent copies first, so that
%% each printed notehead owns its event.
%%
%% Progress lines go to the log prefixed "msmd:" for the Python side to parse.
%%
%% With  #(define msmd-repeats 'folded)  before this file is loaded (render.py
%% writes it into a small settings file that then includes msmd.ily), the MIDI
%% copy keeps volta, percent and tremolo repeats folded: the music is played in
%% printed order, as MSMD did, each alternative once.  With 'timeline, only
%% volta repeats stay folded: tremolo and percent repeats sound where they are
%% printed, so the MIDI plays the printed timeline, which the align stage
%% unrolls by the score's repeat structure for every voice alike (for repeats
%% written in some voices only).  Source \repeat unfold is expanded in every
%% mode (every copy is printed).
%%
%% The repeat structure: every volta repeat of a layout score, with its printed
%% start, body, alternatives (and the volte each is played in) and count, is
%% written to the repeats table (msmd-geometry.ily) as the score is split.

#(define msmd-repeats-mode
   (if (defined? 'msmd-repeats) msmd-repeats 'unfolded))
#(if (not (memq msmd-repeats-mode '(unfolded folded timeline)))
     (ly:error "msmd: unknown repeats mode ~a (unfolded, folded or timeline)" msmd-repeats-mode))

#(define msmd-next-id 0)
#(define msmd-pending-midi-scores '())
#(define msmd-fallback-midi-def #f)
#(define msmd-layout-scores-split 0)  % layout scores made so far: the next one's index

#(define (msmd-log fmt . args)
   (ly:message "msmd: ~a" (apply format #f fmt args)))

#(define (msmd-expand-source-unfolds music)
   "Replace source-level \\repeat unfold by sequential deep copies."
   (map-some-music
    (lambda (m)
      (and (music-is-of-type? m 'unfolded-repeated-music)
           (make-sequential-music
            (map ly:music-deep-copy
                 ((@@ (lily) make-unfolded-set) m)))))
    music))

#(define (msmd-mark-measured-repeats! music)
   "Flag note events inside tremolo and percent repeats: they are always played
repeated (unlike volta repeats, which a Da Capo pass may skip)."
   (for-some-music
    (lambda (m)
      (if (or (music-is-of-type? m 'tremolo-repeated-music)
              (music-is-of-type? m 'percent-repeated-music))
          (begin
            (for-some-music
             (lambda (inner)
               (if (music-is-of-type? inner 'note-event)
                   (ly:music-set-property! inner 'msmd-measured-repeat #t))
               #f)
             m)
            #t)
          #f))
    music)
   music)

#(define (msmd-tag-events! music)
   "Give every NoteEvent a unique 'msmd-id."
   (msmd-mark-measured-repeats! music)
   (for-some-music
    (lambda (m)
      (if (music-is-of-type? m 'note-event)
          (begin
            (ly:music-set-property! m 'msmd-id msmd-next-id)
            (set! msmd-next-id (1+ msmd-next-id))))
      #f)
    music)
   music)

#(define (msmd-forget-lengths! music)
   "Drop lengths that LilyPond cached on containers; unfolding changed them."
   (for-some-music
    (lambda (m)
      (if (procedure? (ly:music-property m 'length-callback #f))
          (ly:music-set-property! m 'length '()))
      #f)
    music)
   music)

#(define (msmd-unfold-measured-repeats music)
   "Unfold the tremolo and percent repeats of MUSIC (they take the time they are
printed with), keeping volta repeats folded.  One pass over the tree (LilyPond's
unfold-repeats with a list of types walks it once per type at every level)."
   (map-some-music
    (lambda (m)
      (and (or (music-is-of-type? m 'percent-repeated-music)
               (music-is-of-type? m 'tremolo-repeated-music))
           (msmd-unfold-measured-repeats
            (make-sequential-music
             (ly:music-deep-copy
              ((@@ (lily) make-unfolded-set) (make-music 'UnfoldedRepeatedMusic m)))))))
    music))

#(define (msmd-unfolded-copy music)
   "A deep copy of MUSIC as it is played: every repeat unfolded; or as printed
when the repeats mode is folded; or on the printed timeline (volta repeats
folded, measured repeats unfolded) in timeline mode."
   (case msmd-repeats-mode
     ((folded) (ly:music-deep-copy music))
     ((timeline)
      (msmd-forget-lengths! (msmd-unfold-measured-repeats (ly:music-deep-copy music))))
     (else
      (msmd-forget-lengths! (unfold-repeats-fully (ly:music-deep-copy music))))))

#(define (msmd-length music)
   "Main length of MUSIC, whole notes, as LilyPond's iterators advance time."
   (ly:moment-main (ly:music-length music)))

#(define (msmd-inner-volta-specs? body)
   "True if BODY has \\volta, \\unfolded or \\alternative music outside its
nested repeats: parts played in some volte only, which the repeats table does
not describe."
   (let ((found #f))
     (for-some-music
      (lambda (m)
        (cond ((music-is-of-type? m 'repeated-music) #t)
              ((or (music-is-of-type? m 'volta-specification)
                   (music-is-of-type? m 'unfolded-specification)
                   (music-is-of-type? m 'sequential-alternative-music))
               (set! found #t)
               #t)
              (else #f)))
      body)
     found))

#(define (msmd-log-volta-repeats! score music)
   "Write every volta repeat of MUSIC (layout score SCORE) to the repeats table;
return MUSIC.  A row gives the repeat's printed start, body end, the end of
each alternative with the volte it is played in, and the count.  Positions come
from the music's lengths, walked as LilyPond's iterators walk it (sequential
music adds up, simultaneous music and wrappers start together); the layout
engraver logs LilyPond's own repeat events beside them, so the align stage can
check that the two agree."
   (define (volte alternative count)
     (if (music-is-of-type? alternative 'volta-specification)
         (ly:music-property alternative 'volta-numbers '())
         (iota count 1)))
   (define (walk m start)
     (cond
      ((music-is-of-type? m 'folded-repeated-music)
       (let* ((body (ly:music-property m 'element))
              (count (ly:music-property m 'repeat-count 2))
              (alternatives (ly:music-property m 'elements '()))
              (body-end (+ start (msmd-length body)))
              (ends (cdr (reverse
                          (fold (lambda (alt ends) (cons (+ (car ends) (msmd-length alt)) ends))
                                (list body-end) alternatives)))))
         (msmd-log-repeat
          score
          (if (msmd-inner-volta-specs? body) "volta-specced" "volta")
          start body-end count
          (string-join
           (map (lambda (end alt)
                  (format #f "~a=~a" (msmd-rational end)
                          (string-join (map number->string (volte alt count)) ",")))
                ends alternatives)
           ";")
          (msmd-music-location m))
         (walk body start)
         (for-each walk alternatives (list-head (cons body-end ends) (length alternatives)))))
      ((or (music-is-of-type? m 'percent-repeated-music)
           (music-is-of-type? m 'tremolo-repeated-music)
           (music-is-of-type? m 'lyric-combine-music))
       #f)
      ((music-is-of-type? m 'sequential-music)
       (fold (lambda (e at) (walk e at) (+ at (msmd-length e)))
             start (ly:music-property m 'elements '())))
      (else
       (let ((element (ly:music-property m 'element #f)))
         (if (ly:music? element) (walk element start))
         (for-each (lambda (e) (walk e start)) (ly:music-property m 'elements '()))))))
   (walk music 0)
   music)

#(define (msmd-output-defs-of score kind)
   (filter (lambda (def) (eq? (ly:output-def-lookup def 'output-def-kind #f) kind))
           (ly:score-output-defs score)))

#(define (msmd-split-score score)
   "Return the list of scores that replace SCORE."
   (if (or (not (ly:score? score)) (ly:score-error? score))
       (list score)
       (let ((layouts (msmd-output-defs-of score 'layout))
             (midis (msmd-output-defs-of score 'midi)))
         (cond
          ((and (null? layouts) (pair? midis))
           (msmd-log "midi-only score dropped; its \\midi block is reused")
           (if (not msmd-fallback-midi-def)
               (set! msmd-fallback-midi-def (car midis)))
           (for-each (lambda (s) (ly:score-add-output-def! s (car midis)))
                     msmd-pending-midi-scores)
           (set! msmd-pending-midi-scores '())
           '())
          (else
           (let* ((music (msmd-log-volta-repeats!
                          msmd-layout-scores-split
                          (msmd-tag-events!
                           (msmd-expand-source-unfolds (ly:score-music score)))))
                  (layout-score (ly:make-score music))
                  (midi-music (msmd-unfolded-copy music))
                  (midi-score (ly:make-score midi-music)))
             (if (module? (ly:score-header score))
                 (ly:score-set-header! layout-score (ly:score-header score)))
             (for-each (lambda (def) (ly:score-add-output-def! layout-score def))
                       layouts)
             (cond
              ((pair? midis) (ly:score-add-output-def! midi-score (car midis)))
              (msmd-fallback-midi-def
               (ly:score-add-output-def! midi-score msmd-fallback-midi-def))
              (else
               (set! msmd-pending-midi-scores
                     (cons midi-score msmd-pending-midi-scores))))
             (set! msmd-layout-scores-split (1+ msmd-layout-scores-split))
             (msmd-log "score split: layout + ~a midi (events ~a)" msmd-repeats-mode msmd-next-id)
             (list layout-score midi-score)))))))

#(define (msmd-finish-pending!)
   (for-each (lambda (s) (ly:score-add-output-def! s $defaultmidi))
             msmd-pending-midi-scores)
   (set! msmd-pending-midi-scores '()))

#(define (msmd-each handler)
   (lambda args
     (let ((target (drop-right args 1))
           (score (last args)))
       (for-each (lambda (s) (apply handler (append target (list s))))
                 (msmd-split-score score)))))

#(define toplevel-score-handler (msmd-each collect-scores-for-book))
#(define book-score-handler (msmd-each ly:book-add-score!))
#(define bookpart-score-handler (msmd-each ly:book-add-score!))
#(define toplevel-music-handler
   (lambda (music) (collect-music-aux toplevel-score-handler music)))
#(define book-music-handler
   (lambda (book music)
     (collect-music-aux (lambda (score) (book-score-handler book score)) music)))
#(define bookpart-music-handler book-music-handler)

#(define toplevel-book-handler
   (lambda (book) (msmd-finish-pending!) (print-book-with-defaults book)))
#(define book-handler
   (lambda (book) (msmd-finish-pending!) (print-book-with-defaults book)))
