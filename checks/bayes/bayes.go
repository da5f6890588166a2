// Package bayes is chainmail's statistical content classifier: it learns
// the words and features of messages people report as spam or not spam
// (chainmail learn, the feedback endpoint, optionally confident verdicts)
// and gives every new message a spam probability, as SpamAssassin's
// BAYES_* rules and bogofilter do.
//
// The token database lives in the state store (see db.go), so one
// classifier serves one MTA (bbolt) or several (Redis).
package bayes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"chainmail/attachments"
	"chainmail/checks"
	"chainmail/store"
)

// Name is the check's name in configuration, logs and metrics.
const Name = "bayes"

// Config are the check's options.
type Config struct {
	// MinSpam and MinHam are the learned messages of each class below
	// which the check answers none: a classifier that has seen a handful
	// of messages guesses.
	MinSpam int `yaml:"min_spam"`
	MinHam  int `yaml:"min_ham"`
	// TokenTTL is how long a token seen in at least 3 learned messages is
	// kept after it was last learned; RareTokenTTL the same for the rest.
	// Rare tokens are most of a database and say least: they go first.
	TokenTTL     checks.Duration `yaml:"token_ttl"`
	RareTokenTTL checks.Duration `yaml:"rare_token_ttl"`
	// MaxText bounds the decoded text read per message; MaxTokens the
	// distinct tokens looked up.
	MaxText   checks.Size `yaml:"max_text"`
	MaxTokens int         `yaml:"max_tokens"`
	// Autolearn learns confident verdicts.
	Autolearn Autolearn `yaml:"autolearn"`
}

// Autolearn learns messages the rest of the chain judged with confidence,
// as SpamAssassin's bayes_auto_learn does: the total score without the
// bayes check's own symbols at or above Spam is learned as spam, at or
// below Ham as ham.
type Autolearn struct {
	Enabled bool    `yaml:"enabled"`
	Spam    float64 `yaml:"spam"`
	Ham     float64 `yaml:"ham"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		MinSpam:      200,
		MinHam:       200,
		TokenTTL:     checks.Duration(365 * 24 * time.Hour),
		RareTokenTTL: checks.Duration(90 * 24 * time.Hour),
		MaxText:      512 << 10,
		MaxTokens:    3000,
		Autolearn:    Autolearn{Spam: 12, Ham: 0.1},
	}
}

// Check is the bayes check.
type Check struct {
	cfg  Config
	st   store.Store
	lim  TokenLimits
	p    params
	logf func(string, ...any)

	// ready is the last classification's "enough learned" (false at
	// first): while false, Classify reads the counters before the tokens.
	ready atomic.Bool

	// autolearn queue: Learn must not wait on the store. The goroutine
	// that empties it starts with the first job and ends with Close
	// (an engine replaced on reload is closed, so none is left behind).
	mu     sync.Mutex
	queue  chan learnJob
	done   chan struct{}
	closed bool
}

type learnJob struct {
	toks []string
	spam bool
}

// New builds the check over the state store st.
func New(cfg Config, st store.Store, logf func(string, ...any)) (*Check, error) {
	if st == nil {
		return nil, errors.New("bayes: needs the state store (state:)")
	}
	switch {
	case cfg.MinSpam < 1 || cfg.MinHam < 1:
		return nil, errors.New("bayes: min_spam and min_ham must be at least 1")
	case cfg.TokenTTL <= 0 || cfg.RareTokenTTL <= 0:
		return nil, errors.New("bayes: token_ttl and rare_token_ttl must be above 0")
	case cfg.RareTokenTTL > cfg.TokenTTL:
		return nil, errors.New("bayes: rare_token_ttl must not be longer than token_ttl")
	case cfg.MaxTokens < 1 || cfg.MaxText < 1:
		return nil, errors.New("bayes: max_tokens and max_text must be above 0")
	case cfg.Autolearn.Enabled && cfg.Autolearn.Ham >= cfg.Autolearn.Spam:
		return nil, errors.New("bayes: autolearn ham must be below autolearn spam")
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Check{cfg: cfg, st: st, p: defaultParams, logf: logf,
		lim: TokenLimits{MaxText: int64(cfg.MaxText), MaxTokens: cfg.MaxTokens}}, nil
}

// WithWalk bounds the MIME walk of the tokenizer (the chain's shared
// limits).
func (c *Check) WithWalk(w attachments.WalkOptions) *Check {
	c.lim.Walk = w
	return c
}

// Name implements checks.Check.
func (*Check) Name() string { return Name }

// Facts implements checks.Factual: what rules see when the check did not
// run. probability is 0.5 (says nothing) so a rule such as
// `bayes.probability < 0.05` is false then.
func (*Check) Facts() map[string]any {
	return map[string]any{"probability": 0.5, "ready": false, "learned_spam": 0, "learned_ham": 0}
}

// Classification is what the classifier says of one message.
type Classification struct {
	// Probability that the message is spam, 0..1 (0.5 when not Ready).
	Probability float64
	// Ready is false while fewer than min_spam spam or min_ham ham were
	// learned.
	Ready bool
	// LearnedSpam and LearnedHam are the messages learned so far.
	LearnedSpam, LearnedHam int
	// Tokens is how many tokens the message has; Used how many of them
	// decided.
	Tokens, Used int
}

// Classify judges m.
func (c *Check) Classify(ctx context.Context, m *checks.Message) (Classification, error) {
	if !c.ready.Load() {
		// Until the database has learned enough, read its two counters
		// only: a new installation does not tokenize every message and
		// look up its tokens to answer none.
		nspam, nham, _, err := lookup(ctx, c.st, nil)
		if err != nil {
			return Classification{Probability: 0.5}, err
		}
		if int(nspam) < c.cfg.MinSpam || int(nham) < c.cfg.MinHam {
			return Classification{Probability: 0.5, LearnedSpam: int(nspam), LearnedHam: int(nham)}, nil
		}
	}
	return c.classify(ctx, Tokenize(m, c.lim))
}

func (c *Check) classify(ctx context.Context, toks []string) (Classification, error) {
	nspam, nham, cs, err := lookup(ctx, c.st, toks)
	if err != nil {
		return Classification{Probability: 0.5}, err
	}
	out := Classification{Probability: 0.5, LearnedSpam: int(nspam), LearnedHam: int(nham), Tokens: len(toks)}
	out.Ready = out.LearnedSpam >= c.cfg.MinSpam && out.LearnedHam >= c.cfg.MinHam
	c.ready.Store(out.Ready)
	if !out.Ready {
		return out, nil
	}
	probs := make([]float64, 0, len(cs))
	for _, x := range cs {
		if x.spam+x.ham > 0 {
			probs = append(probs, c.p.tokenProb(x, nspam, nham))
		}
	}
	out.Probability, out.Used = c.p.combine(probs)
	return out, nil
}

// band is one SpamAssassin-style BAYES_ symbol: the probabilities from
// low (inclusive) to the next band's low.
type band struct {
	name  string
	low   float64
	score float64
}

// bands are SpamAssassin's BAYES_ bands. The scores are chainmail's own:
// without SpamAssassin's hundreds of other rules, the classifier must
// carry a message to the tag threshold (5) on its own when it is sure
// (p >= 0.95), and to the quarantine threshold (10, the hold queue: a
// person can release it) only when it is all but certain (p >= 0.999);
// rejecting (15) always takes other evidence too. On the public corpus no
// ham scored above 0.6, and 81 % of the spam scored 0.999 or more, on the
// split the tokenizer was built on (README, "Content classification").
var bands = []band{
	{"BAYES_00", 0, -1.5},
	{"BAYES_05", 0.01, -0.5},
	{"BAYES_20", 0.05, 0},
	{"BAYES_40", 0.20, 0},
	{"BAYES_50", 0.40, 0.8},
	{"BAYES_60", 0.60, 2},
	{"BAYES_80", 0.80, 3.5},
	{"BAYES_95", 0.95, 5},
	{"BAYES_99", 0.99, 6},
}

// over999 is the extra symbol of a probability at or above 0.999.
var over999 = checks.Symbol{Name: "BAYES_999", Score: 4}

// Symbols returns the BAYES_ symbols of probability p, with the default
// scores (the chain's scores: setting overrides them).
func Symbols(p float64) []checks.Symbol {
	b := bands[0]
	for _, x := range bands {
		if p >= x.low {
			b = x
		}
	}
	out := []checks.Symbol{{Name: b.name, Score: b.score, Detail: fmt.Sprintf("%.4f", p)}}
	if p >= 0.999 {
		out = append(out, over999)
	}
	return out
}

// Check implements checks.Check.
func (c *Check) Check(ctx context.Context, m *checks.Message, _ checks.Results) checks.Result {
	res := checks.Result{Check: Name}
	cl, err := c.Classify(ctx, m)
	res.Facts = map[string]any{"probability": cl.Probability, "ready": cl.Ready, "learned_spam": cl.LearnedSpam, "learned_ham": cl.LearnedHam}
	if err != nil {
		res.Status, res.Err = checks.StatusTemperror, err
		res.Reason = "token database unavailable: " + err.Error()
		return res
	}
	if !cl.Ready {
		res.Status = checks.StatusNone
		res.Reason = fmt.Sprintf("learned %d spam and %d ham; needs %d and %d", cl.LearnedSpam, cl.LearnedHam, c.cfg.MinSpam, c.cfg.MinHam)
		return res
	}
	res.Symbols = Symbols(cl.Probability)
	for _, s := range res.Symbols {
		res.Score += s.Score
	}
	res.Reason = fmt.Sprintf("spam probability %.4f from %d of %d tokens", cl.Probability, cl.Used, cl.Tokens)
	switch {
	case cl.Probability >= 0.95:
		res.Status, res.Class = checks.StatusSpam, checks.ClassSpam
	case cl.Probability <= 0.05:
		res.Status, res.Class = checks.StatusHam, checks.ClassHam
	default:
		res.Status = checks.StatusNeutral
	}
	return res
}

// Train learns m as spam or ham (checks.Trainer). A message learned before
// as the same class counts once; learned before as the other class, it is
// moved.
func (c *Check) Train(ctx context.Context, m *checks.Message, spam bool) (checks.Trained, error) {
	return c.train(ctx, Tokenize(m, c.lim), spam)
}

func (c *Check) train(ctx context.Context, toks []string, spam bool) (checks.Trained, error) {
	if len(toks) == 0 {
		return "", errors.New("the message has no text to learn")
	}
	mk := messageKey(toks)
	class := className(spam)
	ttl := time.Duration(c.cfg.TokenTTL)
	ok, err := store.SetNX(ctx, c.st, mk, []byte(class), ttl)
	if err != nil {
		return "", err
	}
	if ok {
		counter := keyNSpam
		if !spam {
			counter = keyNHam
		}
		if err := c.add(ctx, toks, unit(spam), map[string]float64{counter: 1}); err != nil {
			// Not learned: forget the mark so that a retry learns it.
			_ = store.Delete(ctx, c.st, mk)
			return "", err
		}
		return checks.TrainedNew, nil
	}
	was, _, err := store.Get(ctx, c.st, mk)
	if err != nil {
		return "", err
	}
	if string(was) == class {
		return checks.TrainedAlready, nil
	}
	if err := store.Set(ctx, c.st, mk, []byte(class), ttl); err != nil {
		return "", err
	}
	to, from := keyNSpam, keyNHam
	if !spam {
		to, from = from, to
	}
	if err := c.add(ctx, toks, unit(spam)-unit(!spam), map[string]float64{to: 1, from: -1}); err != nil {
		return "", err
	}
	return checks.TrainedMoved, nil
}

// Stats are the database's figures.
type Stats struct {
	LearnedSpam, LearnedHam int
	MinSpam, MinHam         int
}

// Stats reads the learned message counts.
func (c *Check) Stats(ctx context.Context) (Stats, error) {
	nspam, nham, _, err := lookup(ctx, c.st, nil)
	return Stats{LearnedSpam: int(nspam), LearnedHam: int(nham), MinSpam: c.cfg.MinSpam, MinHam: c.cfg.MinHam}, err
}

// Learn implements checks.Learner: autolearn from confident verdicts.
// The score that decides leaves out the bayes check's own symbols, so the
// classifier does not teach itself what it already believes.
func (c *Check) Learn(_ context.Context, m *checks.Message, v *checks.Verdict) {
	if !c.cfg.Autolearn.Enabled || v == nil {
		return
	}
	if v.Decided() == checks.Tempfail {
		return
	}
	for _, r := range v.Results {
		switch r.Status {
		case checks.StatusTemperror, checks.StatusTimeout, checks.StatusError:
			return // a check that could not look is no confidence
		}
	}
	score := v.Score
	if r, ok := v.Results.Get(Name); ok {
		score -= r.Score
	}
	var spam bool
	switch {
	case score >= c.cfg.Autolearn.Spam:
		spam = true
	case score <= c.cfg.Autolearn.Ham && !v.Spam:
		spam = false
	default:
		return
	}
	job := learnJob{toks: Tokenize(m, c.lim), spam: spam}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.queue == nil {
		c.queue, c.done = make(chan learnJob, 256), make(chan struct{})
		go c.learner(c.queue, c.done)
	}
	select {
	case c.queue <- job:
	default:
		c.logf("bayes: autolearn queue full, a message was not learned")
	}
}

func (c *Check) learner(queue <-chan learnJob, done chan<- struct{}) {
	defer close(done)
	for j := range queue {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := c.train(ctx, j.toks, j.spam); err != nil {
			c.logf("bayes: autolearn: %v", err)
		}
		cancel()
	}
}

// Close implements io.Closer: the autolearn goroutine learns what is
// queued and ends (the state store must still be open). Learn does
// nothing afterwards.
func (c *Check) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	queue, done := c.queue, c.done
	c.mu.Unlock()
	if queue != nil {
		close(queue)
		<-done
	}
	return nil
}
