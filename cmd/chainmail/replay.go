package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/mail"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"chainmail/checks"
	"chainmail/checks/config"
	"chainmail/checks/dns"
	"chainmail/milter"
)

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// envelopeFile is the sidecar NAME.eml.envelope, keyed like the flags.
type envelopeFile struct {
	ClientIP   string   `yaml:"client-ip"`
	ClientName string   `yaml:"client-name"`
	HELO       string   `yaml:"helo"`
	From       *string  `yaml:"from"`
	Rcpt       []string `yaml:"rcpt"`
	Auth       string   `yaml:"auth"`
	QueueID    string   `yaml:"queue-id"`
}

// replayResult is one message's JSON output.
type replayResult struct {
	File     string          `json:"file"`
	QueueID  string          `json:"queue_id"`
	Action   string          `json:"action"`
	Score    float64         `json:"score"`
	Required float64         `json:"required"`
	Reply    string          `json:"reply"`
	Results  []jsonResult    `json:"results"`
	Symbols  []checks.Symbol `json:"symbols"`
	Headers  []checks.Header `json:"headers"`
	Log      []string        `json:"log"`
	// Milter mode: what the milter answered.
	Quarantine string `json:"quarantine,omitempty"`
	Monitor    string `json:"would,omitempty"`
	Error      string `json:"error,omitempty"`
	// What the attachment check did with each file, what the html check
	// disarmed.
	Attachments []jsonAttachment `json:"attachments"`
	Disarmed    []string         `json:"disarmed,omitempty"`
}

type jsonResult struct {
	Check  string  `json:"check"`
	Status string  `json:"status"`
	Score  float64 `json:"score"`
	Reason string  `json:"reason"`
}

func replay(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("replay", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var zones, rcpts multiFlag
	cfgPath := fl.String("c", "", "configuration `FILE`")
	fl.Var(&zones, "zone", "serve this RFC 1035 zone `FILE` on 127.0.0.1 and use it as the only resolver (repeatable)")
	dnsAddr := fl.String("dns", "", "use the DNS server at `HOST:PORT` as the only resolver")
	milterAddr := fl.String("milter", "", "send each message through the milter protocol to `ADDR` instead of running the chain in-process")
	clientIP := fl.String("client-ip", "", "SMTP client `IP`")
	clientName := fl.String("client-name", "", "the SMTP client's verified reverse-DNS `NAME` (default: looked up, \"unknown\" when it does not verify)")
	helo := fl.String("helo", "", "HELO `NAME`")
	from := fl.String("from", "", "envelope sender `ADDR` (MAIL FROM)")
	fl.Var(&rcpts, "rcpt", "envelope recipient `ADDR` (repeatable)")
	auth := fl.String("auth", "", "SASL `USER` the client authenticated as")
	queueID := fl.String("queue-id", "", "queue `ID` (default: derived from the file's content)")
	asJSON := fl.Bool("json", false, "print one JSON object per message")
	outPath := fl.String("out", "", "write each message the milter lets through to `DIR` as it would be delivered")
	if err := fl.Parse(args); err != nil {
		return exitUsage
	}
	if fl.NArg() == 0 {
		fmt.Fprintln(stderr, "chainmail replay: no PATH given (an .eml file, an mbox file, a Maildir folder or a directory)")
		return exitUsage
	}
	if len(zones) > 0 && *dnsAddr != "" {
		fmt.Fprintln(stderr, "chainmail replay: --zone and --dns exclude each other")
		return exitUsage
	}
	var flagIP net.IP
	if *clientIP != "" {
		if flagIP = net.ParseIP(*clientIP); flagIP == nil {
			fmt.Fprintf(stderr, "chainmail replay: --client-ip %q is not an IP address\n", *clientIP)
			return exitUsage
		}
	}
	fromSet := false
	fl.Visit(func(f *flag.Flag) {
		if f.Name == "from" {
			fromSet = true
		}
	})

	// Every message goes through the milter protocol: to the server at
	// --milter, or to chainmail's own milter server started here with the
	// options serve uses, so that replay runs the stages serve runs
	// (connect, HELO, MAIL, each RCPT, end of message) under the same
	// limits.
	var client *milter.Client
	var rec *recorder
	var resolver dns.Resolver
	if *milterAddr != "" {
		network, addr, err := milter.ParseAddr(*milterAddr)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail replay: %v\n", err)
			return exitUsage
		}
		client = &milter.Client{Network: network, Address: addr}
	} else {
		f, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail: %v\n", err)
			return exitUsage
		}
		deps, closeDeps, err := replayDependencies(f, zones, *dnsAddr, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail replay: %v\n", err)
			return exitUsage
		}
		// Deferred first, run last: the state store closes after the
		// server stopped and the checks flushed what they queued.
		defer closeDeps()
		eng, err := f.Build(deps)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail: %v\n", err)
			return exitUsage
		}
		resolver = deps.Resolver
		rec = &recorder{}
		rec.hook(eng, f.Log.Lines)
		logf := func(format string, args ...any) {
			fmt.Fprintf(stderr, "chainmail replay: "+format+"\n", args...)
		}
		addr, stop, err := startReplayServer(f, eng, logf)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail replay: %v\n", err)
			return exitUsage
		}
		defer stop()
		client = &milter.Client{Network: "tcp", Address: addr, Timeout: time.Duration(f.Milter.Timeout) + time.Minute}
	}

	var out *outDir
	if *outPath != "" {
		var err error
		if out, err = newOutDir(*outPath); err != nil {
			fmt.Fprintf(stderr, "chainmail replay: --out: %v\n", err)
			return exitUsage
		}
	}
	files, err := collect(fl.Args())
	status := exitOK
	if err != nil {
		fmt.Fprintf(stderr, "chainmail replay: %v\n", err)
		status = exitFiles
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	for _, file := range files {
		items, err := readItems(file)
		if err != nil {
			fmt.Fprintf(stderr, "chainmail replay: %v\n", err)
			status = exitFiles
			continue
		}
		for _, it := range items {
			path := it.Name
			spool := checks.NewSpool(0, "")
			msg, err := checks.ReadMessage(bytes.NewReader(it.Raw), spool)
			if err != nil {
				spool.Close()
				fmt.Fprintf(stderr, "chainmail replay: %s: %v\n", path, err)
				status = exitFiles
				continue
			}
			env := envelopeFromMessage(msg)
			spool.Close()
			// The name in Received goes with the address in it.
			receivedIP, receivedName := env.ClientIP, env.ClientName
			env.ClientName = ""
			// Flags override what the message says.
			if flagIP != nil {
				env.ClientIP = flagIP
			}
			if *clientName != "" {
				env.ClientName = *clientName
			}
			if *helo != "" {
				env.HELO = *helo
			}
			if fromSet {
				env.MailFrom = *from
			}
			if len(rcpts) > 0 {
				env.Rcpts = append([]string(nil), rcpts...)
			}
			if *auth != "" {
				env.AuthUser = *auth
			}
			if *queueID != "" {
				env.QueueID = *queueID
			}
			if env.QueueID == "" {
				env.QueueID = it.DefaultQueueID
			}
			// The sidecar overrides both.
			if err := applySidecar(&env, it.Sidecar); err != nil {
				fmt.Fprintf(stderr, "chainmail replay: %v\n", err)
				status = exitFiles
				continue
			}
			if env.ClientName == "" && receivedName != "" && env.ClientIP.Equal(receivedIP) {
				env.ClientName = receivedName
			}
			if env.ClientName == "" && env.ClientIP != nil && resolver != nil {
				env.ClientName = verifiedName(resolver, env.ClientIP)
			}

			rec.reset()
			o, err := replaySend(client, env, it.Raw)
			v, lines := rec.take()
			if err != nil {
				fmt.Fprintf(stderr, "chainmail replay: %s: milter: %v\n", path, err)
				status = exitFiles
				continue
			}
			if out != nil {
				if !delivers(o) {
					fmt.Fprintf(stderr, "chainmail replay: %s: not written: message %s\n", path, o.Action)
				} else if _, err := out.write(path, it.Raw, o); err != nil {
					fmt.Fprintf(stderr, "chainmail replay: %s: --out: %v\n", path, err)
					status = exitFiles
				}
			}
			if rec == nil {
				// --milter: what the milter answered is all there is.
				if *asJSON {
					enc.Encode(replayResult{File: path, QueueID: env.QueueID, Action: o.Action, Reply: o.Reply,
						Headers: nonNil(o.Headers), Quarantine: o.Quarantine, Results: []jsonResult{}, Symbols: []checks.Symbol{}, Log: []string{},
						Attachments: []jsonAttachment{}})
				} else {
					fmt.Fprintln(stdout, outcomeLine(path, env.QueueID, o))
				}
				continue
			}
			if v == nil {
				// The message ended before its end (every recipient
				// refused, a header block over milter.max_header_bytes):
				// the lines are those serve writes, the answer goes to
				// stderr in text mode.
				if *asJSON {
					enc.Encode(replayResult{File: path, QueueID: env.QueueID, Action: o.Action, Reply: o.Reply,
						Headers: []checks.Header{}, Results: []jsonResult{}, Symbols: []checks.Symbol{}, Log: lines,
						Attachments: []jsonAttachment{}})
				} else {
					for _, l := range lines {
						fmt.Fprintln(stdout, l)
					}
					fmt.Fprintf(stderr, "chainmail replay: %s\n", outcomeLine(path, env.QueueID, o))
				}
				continue
			}
			if *asJSON {
				r := replayResult{File: path, QueueID: env.QueueID, Action: v.Action.String(), Score: v.Score, Required: v.Required,
					Reply: v.SMTPReply(), Symbols: v.Symbols, Headers: verdictHeaders(v), Log: lines}
				r.Attachments, r.Disarmed = attachmentOutcomes(v)
				if r.Symbols == nil {
					r.Symbols = []checks.Symbol{}
				}
				if v.Monitor {
					r.Monitor = v.Would.String()
				}
				r.Results = []jsonResult{}
				for _, res := range v.Results {
					r.Results = append(r.Results, jsonResult{Check: res.Check, Status: string(res.Status), Score: res.Score, Reason: res.Reason})
				}
				enc.Encode(r)
			} else {
				for _, l := range lines {
					fmt.Fprintln(stdout, l)
				}
			}
		}
	}
	return status
}

// verdictHeaders lists what the milter would send for v, as milter mode
// does: the removals first ("Name[index]" with an empty value), then the
// fields added. Mail that is not delivered gets neither.
func verdictHeaders(v *checks.Verdict) []checks.Header {
	out := []checks.Header{}
	if v.Action > checks.Quarantine {
		return out
	}
	for _, r := range v.Remove {
		out = append(out, checks.Header{Name: fmt.Sprintf("%s[%d]", r.Name, r.Index)})
	}
	return append(out, v.Headers...)
}

func nonNil(h []checks.Header) []checks.Header {
	if h == nil {
		return []checks.Header{}
	}
	return h
}

// outcomeLine is the text output of milter mode.
func outcomeLine(path, qid string, o *milter.Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: message %s %s", path, qid, o.Action)
	if o.Stage != "" {
		fmt.Fprintf(&b, " at %s", o.Stage)
	}
	if o.Reply != "" {
		fmt.Fprintf(&b, " %q", o.Reply)
	}
	if o.Quarantine != "" {
		fmt.Fprintf(&b, " quarantine=%q", o.Quarantine)
	}
	for _, h := range o.Headers {
		fmt.Fprintf(&b, " header=%q", h.Name+": "+h.Value)
	}
	return b.String()
}

// skipMboxFrom returns raw without its first line when that line is an
// mbox separator ("From sender@example.com Thu Aug 22 …", RFC 4155): it
// is no header field, and read as one it would end the header block at
// once. Only the first line is looked at; ">From " quoting further down
// is left as it is, since it is part of the message as exported.
func skipMboxFrom(raw []byte) []byte {
	if !bytes.HasPrefix(raw, []byte("From ")) {
		return raw
	}
	if i := bytes.IndexByte(raw, '\n'); i >= 0 {
		return raw[i+1:]
	}
	return raw[len(raw):]
}

// envelopeFromMessage derives envelope facts from the header: MAIL FROM
// from Return-Path, recipients from Delivered-To else To and Cc, client
// IP and HELO from the topmost Received.
func envelopeFromMessage(m *checks.Message) checks.Envelope {
	var env checks.Envelope
	if rp := m.Get("Return-Path"); rp != "" {
		env.MailFrom = strings.TrimSpace(strings.Trim(strings.TrimSpace(rp), "<>"))
	} else if a := firstAddress(m.Get("From")); a != "" {
		env.MailFrom = a
	}
	if dt := m.Values("Delivered-To"); len(dt) > 0 {
		for _, d := range dt {
			env.Rcpts = append(env.Rcpts, strings.Trim(strings.TrimSpace(d), "<>"))
		}
	} else {
		for _, h := range []string{"To", "Cc"} {
			for _, v := range m.Values(h) {
				if as, err := mail.ParseAddressList(v); err == nil {
					for _, a := range as {
						env.Rcpts = append(env.Rcpts, a.Address)
					}
				}
			}
		}
	}
	if rs := m.Values("Received"); len(rs) > 0 {
		env.ClientIP, env.HELO, env.ClientName = parseReceived(rs[0])
	}
	return env
}

func firstAddress(v string) string {
	if as, err := mail.ParseAddressList(v); err == nil && len(as) > 0 {
		return as[0].Address
	}
	return ""
}

// parseReceived reads "from HELO (NAME [IP])" as Postfix, sendmail and
// most MTAs write it.
func parseReceived(v string) (ip net.IP, helo, name string) {
	v = checks.Unfold(v)
	fields := strings.Fields(v)
	for i := 0; i+1 < len(fields); i++ {
		if strings.EqualFold(fields[i], "from") {
			helo = fields[i+1]
			break
		}
	}
	if o := strings.IndexByte(v, '('); o >= 0 {
		if c := strings.IndexByte(v[o:], ')'); c > 0 {
			inner := v[o+1 : o+c]
			if lb := strings.IndexByte(inner, '['); lb >= 0 {
				if rb := strings.IndexByte(inner[lb:], ']'); rb > 0 {
					lit := strings.TrimPrefix(strings.ToLower(inner[lb+1:lb+rb]), "ipv6:")
					ip = net.ParseIP(lit)
				}
				name = strings.TrimSpace(inner[:lb])
				if f := strings.Fields(name); len(f) > 0 {
					name = f[len(f)-1]
				}
			}
		}
	}
	if ip == nil {
		// "from [192.0.2.1]" with no comment.
		if lb := strings.IndexByte(v, '['); lb >= 0 {
			if rb := strings.IndexByte(v[lb:], ']'); rb > 0 {
				ip = net.ParseIP(strings.TrimPrefix(strings.ToLower(v[lb+1:lb+rb]), "ipv6:"))
			}
		}
	}
	return ip, helo, name
}

// applySidecar lays NAME.eml.envelope over env when it exists.
func applySidecar(env *checks.Envelope, path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var ef envelopeFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&ef); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %v", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if ef.ClientIP != "" {
		ip := net.ParseIP(ef.ClientIP)
		if ip == nil {
			return fmt.Errorf("%s: client-ip %q is not an IP address", path, ef.ClientIP)
		}
		env.ClientIP = ip
	}
	if ef.ClientName != "" {
		env.ClientName = ef.ClientName
	}
	if ef.HELO != "" {
		env.HELO = ef.HELO
	}
	if ef.From != nil {
		env.MailFrom = strings.Trim(*ef.From, "<>")
	}
	if len(ef.Rcpt) > 0 {
		env.Rcpts = ef.Rcpt
	}
	if ef.Auth != "" {
		env.AuthUser = ef.Auth
	}
	if ef.QueueID != "" {
		env.QueueID = ef.QueueID
	}
	return nil
}
