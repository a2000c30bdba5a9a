;; The float32 compare kernel of src/core/metrics.ts (issue 28), WebAssembly SIMD (128-bit).
;; scripts/gen-compare-kernel.mjs assembles it (the `wabt` dev dependency) into
;; src/core/compare-kernel-wasm.ts, which is committed; test/unit/core/metrics-differential.test.ts
;; checks that the two agree and that the kernel's metrics are the reference implementation's.
;;
;; metrics.ts copies each chunk of both tensors (at most CH = 16384 elements, zero-padded to a
;; multiple of 4: a pair of +0 changes nothing) to XB and YB and calls f32(n, atol, rtol); the
;; running state stays in STATE between calls, so one compare is one sequence of calls.
;;
;; Memory (bytes):
;;   HIST = 0          four ULP histograms, one per lane (lane l at l * 4H), bins 0..H-1, H = 65536;
;;                     bin 0 also counts equal, special and padding positions and is never read
;;   STATE = 1048576   +0   f64x2 max |a-b| (per lane)
;;                     +16  f64x2 M = max |a-b|/|b| (per lane)
;;                     +32  i64x2 mismatches (|a-b| > atol + rtol |b|)
;;                     +48  i32x4 max ULP distance below H (the top histogram bin in use)
;;                     +64  f64x2 Σ (a-b)², +80 Σ a², +96 Σ b², +112 Σ a·b: lane 0 over elements
;;                          4k and 4k+2, lane 1 over 4k+1 and 4k+3 (each pair added first)
;;                     +128 f64x2 fl(M C), C = 1 - 2^-20; +160 atol, +176 rtol (splats)
;;                     +192 i32 positions written to SPEC by this call, +196 values written to BIG
;;                     +208 v128 scratch
;;   XB = STATE + 256, YB = XB + 4 CH   the chunk, as float32
;;   SPEC = YB + 4 CH  chunk indices of special positions: Inf/NaN on either side, or -0 vs +0.
;;                     The kernel zeroes them in both inputs (then a pair of +0: no effect) and
;;                     metrics.ts counts them as the reference does.
;;   BIG = SPEC + 4 CH ULP distances >= H; metrics.ts keeps the largest in a heap for p99.
;;
;; Exactness: max |a-b|, max |a-b|/|b|, the mismatch count and the ULP distances (so max and p99
;; ULP) are the reference's bit for bit: the same float64 operations on the same values, maxima
;; and counts do not depend on order. The four sums are reordered (two lanes, pairs added first);
;; metrics.ts documents the bound.
;;
;; Speed (bench 3, issue 28): the loop is bound by the vector ALUs, ~50 operations per 4 elements,
;; so the common path is kept short: the ULP distance as |p - q| (exact when the signs agree), one
;; branch for the rare vectors (a sign change, a distance >= 2^16, Inf/NaN: the special lanes and
;; the exact distance are worked out there), the divisions for max |a-b|/|b| only when a lane may
;; set a new maximum, the histogram increments as scalar stores. Measured alternatives that were
;; slower or no faster: sums in element order (scalar chains, ~+20 % kernel time), a ULP filter in front of the
;; mismatch test, two vectors per iteration (register spills), other chunk sizes. A second thread
;; with a shared wasm memory was slower (47 ms); what is used instead is a second instance of this
;; kernel in a worker thread, on the upper half of a pair whose values are in SharedArrayBuffers
;; (src/app/compare-thread.ts).

(module
  (memory (export "memory") 21)

  (func (export "f32") (param $n i32) (param $atol f64) (param $rtol f64)
    (local $o i32) (local $end i32) (local $bm i32) (local $v i32)
    (local $nspec i32) (local $nbig i32)
    (local $p v128) (local $q v128) (local $pm v128) (local $qm v128) (local $spec v128) (local $t v128)
    (local $alo v128) (local $ahi v128) (local $blo v128) (local $bhi v128)
    (local $dlo v128) (local $dhi v128) (local $ablo v128) (local $abhi v128) (local $u v128) (local $m v128)
    (local $maxAbs v128) (local $maxS v128) (local $sdd v128) (local $saa v128) (local $sbb v128) (local $sab v128)

    ;; in registers through the loop: the maxima of every position and the sums; the rest (used
    ;; by the mismatch test and the max |a-b|/|b| update) is read from STATE where it is needed
    (local.set $maxAbs (v128.load (i32.const 1048576)))
    (local.set $maxS (v128.load (i32.const 1048624)))
    (local.set $sdd (v128.load (i32.const 1048640)))
    (local.set $saa (v128.load (i32.const 1048656)))
    (local.set $sbb (v128.load (i32.const 1048672)))
    (local.set $sab (v128.load (i32.const 1048688)))
    (v128.store (i32.const 1048704)
      (f64x2.mul (v128.load (i32.const 1048592)) (f64x2.splat (f64.const 0x1.ffffep-1))))
    (v128.store (i32.const 1048736) (f64x2.splat (local.get $atol)))
    (v128.store (i32.const 1048752) (f64x2.splat (local.get $rtol)))
    (local.set $nspec (i32.const 0))
    (local.set $nbig (i32.const 0))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $o (i32.const 0))

    (block $done
      (br_if $done (i32.ge_u (local.get $o) (local.get $end)))
      (loop $next
        ;; XB = 1048832, YB = 1114368
        (local.set $p (v128.load offset=1048832 (local.get $o)))
        (local.set $q (v128.load offset=1114368 (local.get $o)))

        ;; u = |p - q| is the ULP distance when the signs agree. Everything else goes to the branch
        ;; below, taken by a vector with a lane whose signs differ (bit 31 of p ^ q; this covers
        ;; -0 vs +0) or whose u >= H (or whose p ^ q has any bit >= 16 set, which only sends some
        ;; more lanes there), or whose p is Inf/NaN (p - p is NaN, bits not 0; a non-finite q with a
        ;; finite p differs from it in the exponent bits)
        (local.set $u (i32x4.abs (i32x4.sub (local.get $p) (local.get $q))))
        (if (v128.any_true (v128.or
              (i32x4.shr_u (v128.or (local.get $u) (v128.xor (local.get $p) (local.get $q))) (i32.const 16))
              (f32x4.sub (local.get $p) (local.get $p))))
          (then
            ;; special lanes: Inf/NaN on either side (the larger magnitude's bits > 0x7f7fffff), or
            ;; -0 vs +0 (both magnitudes 0, bits not equal)
            (local.set $pm (v128.and (local.get $p) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
            (local.set $qm (v128.and (local.get $q) (v128.const i32x4 0x7fffffff 0x7fffffff 0x7fffffff 0x7fffffff)))
            (local.set $t (i32x4.max_s (local.get $pm) (local.get $qm)))
            (local.set $spec
              (v128.or
                (i32x4.gt_s (local.get $t) (v128.const i32x4 0x7f7fffff 0x7f7fffff 0x7f7fffff 0x7f7fffff))
                (v128.andnot (i32x4.eq (local.get $t) (v128.const i32x4 0 0 0 0))
                  (i32x4.eq (local.get $p) (local.get $q)))))
            (if (v128.any_true (local.get $spec))
              (then
                (local.set $bm (i32x4.bitmask (local.get $spec)))
                (loop $lanes
                  ;; SPEC = 1179904
                  (i32.store offset=1179904 (i32.shl (local.get $nspec) (i32.const 2))
                    (i32.add (i32.shr_u (local.get $o) (i32.const 2)) (i32.ctz (local.get $bm))))
                  (local.set $nspec (i32.add (local.get $nspec) (i32.const 1)))
                  (local.set $bm (i32.and (local.get $bm) (i32.sub (local.get $bm) (i32.const 1))))
                  (br_if $lanes (local.get $bm)))
                (local.set $p (v128.andnot (local.get $p) (local.get $spec)))
                (local.set $q (v128.andnot (local.get $q) (local.get $spec)))
                (local.set $pm (v128.andnot (local.get $pm) (local.get $spec)))
                (local.set $qm (v128.andnot (local.get $qm) (local.get $spec)))))
            ;; the ULP distance of every lane, exact as unsigned 32-bit: |p - q| when the signs agree
            ;; (no overflow), the sum of the magnitudes when they differ (the distance runs through
            ;; zero; -0 and +0 coincide)
            (local.set $u (v128.bitselect
              (i32x4.add (local.get $pm) (local.get $qm))
              (i32x4.abs (i32x4.sub (local.get $p) (local.get $q)))
              (i32x4.shr_s (v128.xor (local.get $p) (local.get $q)) (i32.const 31))))
            ;; distances >= H go to BIG, out of the histograms (scratch at STATE + 208 = 1048784)
            (if (v128.any_true (i32x4.shr_u (local.get $u) (i32.const 16)))
              (then
                (v128.store (i32.const 1048784) (local.get $u))
                (local.set $t (v128.not (i32x4.eq (i32x4.shr_u (local.get $u) (i32.const 16)) (v128.const i32x4 0 0 0 0))))
                (local.set $bm (i32x4.bitmask (local.get $t)))
                (loop $lanes
                  ;; BIG = 1245440
                  (i32.store offset=1245440 (i32.shl (local.get $nbig) (i32.const 2))
                    (i32.load offset=1048784 (i32.shl (i32.ctz (local.get $bm)) (i32.const 2))))
                  (local.set $nbig (i32.add (local.get $nbig) (i32.const 1)))
                  (local.set $bm (i32.and (local.get $bm) (i32.sub (local.get $bm) (i32.const 1))))
                  (br_if $lanes (local.get $bm)))
                (local.set $u (v128.andnot (local.get $u) (local.get $t)))))))

        ;; the values as float64 (exact); d = |a - b| and |b| in float64, as the reference has them
        (local.set $alo (f64x2.promote_low_f32x4 (local.get $p)))
        (local.set $ahi (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $p) (local.get $p))))
        (local.set $blo (f64x2.promote_low_f32x4 (local.get $q)))
        (local.set $bhi (f64x2.promote_low_f32x4
          (i8x16.shuffle 8 9 10 11 12 13 14 15 8 9 10 11 12 13 14 15 (local.get $q) (local.get $q))))
        (local.set $dlo (f64x2.abs (f64x2.sub (local.get $alo) (local.get $blo))))
        (local.set $dhi (f64x2.abs (f64x2.sub (local.get $ahi) (local.get $bhi))))
        (local.set $ablo (f64x2.abs (local.get $blo)))
        (local.set $abhi (f64x2.abs (local.get $bhi)))

        ;; max |a-b| (equal lanes have d = +0)
        (local.set $maxAbs (f64x2.pmax (f64x2.pmax (local.get $maxAbs) (local.get $dlo)) (local.get $dhi)))

        ;; mismatches: d > atol + rtol |b| (metrics.ts calls the kernel only with atol, rtol >= 0, so
        ;; equal lanes, d = +0, never count)
        (v128.store (i32.const 1048608) (i64x2.sub (i64x2.sub (v128.load (i32.const 1048608))
          (f64x2.gt (local.get $dlo) (f64x2.add (v128.load (i32.const 1048736))
            (f64x2.mul (v128.load (i32.const 1048752)) (local.get $ablo)))))
          (f64x2.gt (local.get $dhi) (f64x2.add (v128.load (i32.const 1048736))
            (f64x2.mul (v128.load (i32.const 1048752)) (local.get $abhi))))))

        ;; max |a-b|/|b|, divided out only where some lane may exceed its maximum M: with
        ;; relC = fl(M C), d <= fl(relC |b|) <= M C (1 + 2^-53)^2 |b| < M |b| gives fl(d/|b|) <= M
        ;; (no underflow: once M > 0, M >= 2^-277 and |b| >= 2^-149 or 0)
        (local.set $t (v128.load (i32.const 1048704)))
        (if (v128.any_true (v128.or
              (f64x2.gt (local.get $dlo) (f64x2.mul (local.get $t) (local.get $ablo)))
              (f64x2.gt (local.get $dhi) (f64x2.mul (local.get $t) (local.get $abhi)))))
          (then
            ;; d/0 = +Inf as in the reference; 0/0 = NaN (equal lanes) is dropped by
            ;; pmax(M, x) = M < x ? x : M
            (local.set $m (f64x2.pmax (f64x2.pmax (v128.load (i32.const 1048592))
              (f64x2.div (local.get $dlo) (local.get $ablo))) (f64x2.div (local.get $dhi) (local.get $abhi))))
            (v128.store (i32.const 1048592) (local.get $m))
            (v128.store (i32.const 1048704) (f64x2.mul (local.get $m) (f64x2.splat (f64.const 0x1.ffffep-1))))))

        ;; the histograms, bins read back as scalars from the scratch at STATE + 208 = 1048784
        (v128.store (i32.const 1048784) (local.get $u))
        (local.set $maxS (i32x4.max_u (local.get $maxS) (local.get $u)))
        (local.set $v (i32.shl (i32.load (i32.const 1048784)) (i32.const 2)))
        (i32.store (local.get $v) (i32.add (i32.load (local.get $v)) (i32.const 1)))
        (local.set $v (i32.shl (i32.load (i32.const 1048788)) (i32.const 2)))
        (i32.store offset=262144 (local.get $v) (i32.add (i32.load offset=262144 (local.get $v)) (i32.const 1)))
        (local.set $v (i32.shl (i32.load (i32.const 1048792)) (i32.const 2)))
        (i32.store offset=524288 (local.get $v) (i32.add (i32.load offset=524288 (local.get $v)) (i32.const 1)))
        (local.set $v (i32.shl (i32.load (i32.const 1048796)) (i32.const 2)))
        (i32.store offset=786432 (local.get $v) (i32.add (i32.load offset=786432 (local.get $v)) (i32.const 1)))

        ;; sums: lane 0 over elements 4k and 4k+2, lane 1 over 4k+1 and 4k+3, each pair added first
        (local.set $sdd (f64x2.add (local.get $sdd) (f64x2.add
          (f64x2.mul (local.get $dlo) (local.get $dlo)) (f64x2.mul (local.get $dhi) (local.get $dhi)))))
        (local.set $saa (f64x2.add (local.get $saa) (f64x2.add
          (f64x2.mul (local.get $alo) (local.get $alo)) (f64x2.mul (local.get $ahi) (local.get $ahi)))))
        (local.set $sbb (f64x2.add (local.get $sbb) (f64x2.add
          (f64x2.mul (local.get $blo) (local.get $blo)) (f64x2.mul (local.get $bhi) (local.get $bhi)))))
        (local.set $sab (f64x2.add (local.get $sab) (f64x2.add
          (f64x2.mul (local.get $alo) (local.get $blo)) (f64x2.mul (local.get $ahi) (local.get $bhi)))))

        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $o) (local.get $end)))))

    (v128.store (i32.const 1048576) (local.get $maxAbs))
    (v128.store (i32.const 1048624) (local.get $maxS))
    (v128.store (i32.const 1048640) (local.get $sdd))
    (v128.store (i32.const 1048656) (local.get $saa))
    (v128.store (i32.const 1048672) (local.get $sbb))
    (v128.store (i32.const 1048688) (local.get $sab))
    (i32.store (i32.const 1048768) (local.get $nspec))
    (i32.store (i32.const 1048772) (local.get $nbig))))
