package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// spamdResult is spamd's answer to SYMBOLS: the score, the required
// score and the names of the rules that hit.
type spamdResult struct {
	Spam     bool
	Score    float64
	Required float64
	Rules    []string
}

// spamdSymbols sends msg to the spamd at addr with the SYMBOLS command of
// the spamc protocol (version 1.5) and reads the verdict: a response line
// "SPAMD/1.1 0 EX_OK", headers among which "Spam: True ; 6.5 / 5.0", an
// empty line and the comma-separated rule names.
func spamdSymbols(addr string, msg []byte, timeout time.Duration) (spamdResult, error) {
	var r spamdResult
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return r, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "SYMBOLS SPAMC/1.5\r\nContent-length: %d\r\n\r\n", len(msg)); err != nil {
		return r, err
	}
	if _, err := c.Write(msg); err != nil {
		return r, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	return readSpamd(bufio.NewReader(c))
}

func readSpamd(br *bufio.Reader) (spamdResult, error) {
	var r spamdResult
	line, err := br.ReadString('\n')
	if err != nil {
		return r, fmt.Errorf("spamd: reading the response line: %v", err)
	}
	f := strings.Fields(line)
	if len(f) < 3 || !strings.HasPrefix(f[0], "SPAMD/") {
		return r, fmt.Errorf("spamd: bad response line %q", strings.TrimSpace(line))
	}
	if f[1] != "0" {
		return r, fmt.Errorf("spamd: %s", strings.TrimSpace(line))
	}
	sawSpam := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return r, fmt.Errorf("spamd: reading the headers: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		name, val, ok := strings.Cut(line, ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "Spam") {
			continue
		}
		// True ; 6.5 / 5.0
		verdict, scores, ok1 := strings.Cut(val, ";")
		score, req, ok2 := strings.Cut(scores, "/")
		if !ok1 || !ok2 {
			return r, fmt.Errorf("spamd: bad Spam header %q", line)
		}
		r.Spam = strings.EqualFold(strings.TrimSpace(verdict), "true") || strings.EqualFold(strings.TrimSpace(verdict), "yes")
		if r.Score, err = strconv.ParseFloat(strings.TrimSpace(score), 64); err != nil {
			return r, fmt.Errorf("spamd: bad score in %q", line)
		}
		if r.Required, err = strconv.ParseFloat(strings.TrimSpace(req), 64); err != nil {
			return r, fmt.Errorf("spamd: bad required score in %q", line)
		}
		sawSpam = true
	}
	if !sawSpam {
		return r, fmt.Errorf("spamd: no Spam header in the response")
	}
	body, err := io.ReadAll(br)
	if err != nil {
		return r, err
	}
	for _, s := range strings.Split(strings.TrimSpace(string(body)), ",") {
		if s = strings.TrimSpace(s); s != "" {
			r.Rules = append(r.Rules, s)
		}
	}
	return r, nil
}
