package main

import (
	"math"
	"sort"
)

// rocAUC is the area under the ROC curve of scores where a higher score
// means spammier: the probability that a spam drawn at random scores
// above a ham drawn at random, a tie counting one half (Mann-Whitney U
// divided by nSpam·nHam). NaN when either class is empty.
func rocAUC(spam, ham []float64) float64 {
	if len(spam) == 0 || len(ham) == 0 {
		return math.NaN()
	}
	h := append([]float64(nil), ham...)
	sort.Float64s(h)
	var u float64
	for _, s := range spam {
		below := sort.SearchFloat64s(h, s) // hams < s
		upTo := sort.Search(len(h), func(i int) bool { return h[i] > s })
		u += float64(below) + 0.5*float64(upTo-below)
	}
	return u / (float64(len(spam)) * float64(len(ham)))
}

// operatingPoint is a threshold chosen on the ham scores and what it
// gives: a message is called spam when its score is strictly above
// Threshold.
type operatingPoint struct {
	Threshold float64
	HamFP     int // hams above the threshold
	SpamHit   int // spams above the threshold
	Recall    float64
	FPRate    float64
}

// atFPRate picks the threshold for a ham false-positive rate of at most
// rate: the lowest threshold, among the ham scores, with at most
// floor(rate·nHam) hams strictly above it, and reports the share of spam
// strictly above it. Hams and spams that tie the threshold count as not
// spam, so the rate is never exceeded.
func atFPRate(spam, ham []float64, rate float64) operatingPoint {
	if len(ham) == 0 {
		return operatingPoint{Threshold: math.Inf(-1), SpamHit: len(spam), Recall: 1}
	}
	h := append([]float64(nil), ham...)
	sort.Sort(sort.Reverse(sort.Float64Slice(h)))
	allowed := int(math.Floor(rate*float64(len(h)) + 1e-9))
	if allowed >= len(h) {
		allowed = len(h) - 1
	}
	// Hams strictly above h[allowed] are among h[:allowed]: at most
	// `allowed` of them.
	t := h[allowed]
	p := operatingPoint{Threshold: t}
	for _, x := range h {
		if x > t {
			p.HamFP++
		}
	}
	for _, x := range spam {
		if x > t {
			p.SpamHit++
		}
	}
	if len(spam) > 0 {
		p.Recall = float64(p.SpamHit) / float64(len(spam))
	}
	p.FPRate = float64(p.HamFP) / float64(len(h))
	return p
}

// atCutoff counts the spams and hams scoring at or above cut, the way
// the classifiers apply their own spam cut-off (bogofilter's
// spam_cutoff, SpamAssassin's required_score).
func atCutoff(spam, ham []float64, cut float64) (spamHit, hamFP int) {
	for _, x := range spam {
		if x >= cut {
			spamHit++
		}
	}
	for _, x := range ham {
		if x >= cut {
			hamFP++
		}
	}
	return spamHit, hamFP
}
