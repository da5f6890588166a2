package main

import (
	"bytes"
	"context"
	"fmt"

	"chainmail/checks"
	"chainmail/checks/bayes"
	"chainmail/store/bolt"
)

// boltBayes is the bayes check of chainmail on a bbolt state file,
// trained and asked through its Go API.
type boltBayes struct {
	st    *bolt.Store
	check *bayes.Check
}

// openBayes opens the bbolt file at path and the bayes check of the
// default configuration on it.
func openBayes(path string) (bayesClassifier, error) {
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return nil, err
	}
	c, err := bayes.New(bayes.DefaultConfig(), st, func(string, ...any) {})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &boltBayes{st: st, check: c}, nil
}

func (b *boltBayes) train(ctx context.Context, raw []byte, spam bool) error {
	m, sp, err := parseMessage(raw)
	if err != nil {
		return err
	}
	defer sp.Close()
	_, err = b.check.Train(ctx, m, spam)
	return err
}

func (b *boltBayes) classify(ctx context.Context, raw []byte) (float64, bool, error) {
	m, sp, err := parseMessage(raw)
	if err != nil {
		return 0, false, err
	}
	defer sp.Close()
	c, err := b.check.Classify(ctx, m)
	return c.Probability, c.Ready, err
}

func (b *boltBayes) classifyParsed(ctx context.Context, raw []byte, n int) error {
	m, sp, err := parseMessage(raw)
	if err != nil {
		return err
	}
	defer sp.Close()
	for i := 0; i < n; i++ {
		if _, err := b.check.Classify(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (b *boltBayes) close() error { return b.st.Close() }

func parseMessage(raw []byte) (*checks.Message, *checks.Spool, error) {
	sp := checks.NewSpool(0, "")
	m, err := checks.ReadMessage(bytes.NewReader(skipFromLine(raw)), sp)
	if err != nil {
		sp.Close()
		return nil, nil, fmt.Errorf("reading the message: %v", err)
	}
	return m, sp, nil
}

// skipFromLine drops a first line that is an mbox separator ("From
// sender date"): the corpus files start with one, and it is no header
// field. chainmail replay does the same.
func skipFromLine(raw []byte) []byte {
	if !bytes.HasPrefix(raw, []byte("From ")) {
		return raw
	}
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		return raw[i+1:]
	}
	return raw
}
