// Package zoneserver serves DNS data from RFC 1035 zone files on a real DNS
// server bound to 127.0.0.1, over UDP and TCP, so that resolver code runs
// end to end in tests without touching the network.
//
// The server is authoritative for everything it holds. A name with
// records, or with descendants that have records (an empty non-terminal),
// exists; any other name gets NXDOMAIN, unless a wildcard ("*.parent")
// covers it (RFC 4592). A name that exists but lacks the asked type gets
// NODATA: NOERROR with an empty answer. Both negative answers carry the
// SOA of the closest enclosing zone in the authority section, with the
// negative TTL min(SOA TTL, SOA MINIMUM) as RFC 2308 §3 asks; names
// outside every loaded zone fall under a built-in root SOA whose TTL and
// MINIMUM are 0, so their negative answers are not cached. CNAMEs are
// followed within the loaded data and added to the answer; a loop ends
// the chain.
//
// Faults can be set per name, for one query type or all of them: delay
// the answer, answer SERVFAIL or REFUSED, drop the query (the client
// times out), or truncate UDP answers (TC bit, empty answer) so the
// client must retry over TCP, where the full answer is given. UDP answers
// larger than the client's EDNS0 size (512 without EDNS0) are truncated
// the same way.
//
// "chainmail replay --zone FILE" serves zones with it; tests start one
// with dnstest.Start.
package zoneserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// Fault is what the server does to queries for one name (and type). The
// zero Fault is no fault.
type Fault struct {
	// Delay waits this long before answering (or dropping).
	Delay time.Duration
	// Rcode, when not zero, is answered instead of the data
	// (mdns.RcodeServerFailure, mdns.RcodeRefused, …).
	Rcode int
	// Drop sends no answer at all.
	Drop bool
	// Truncate answers UDP queries with the TC bit and an empty answer;
	// TCP queries get the full answer.
	Truncate bool
}

// Delay returns a fault that delays the answer by d.
func Delay(d time.Duration) Fault { return Fault{Delay: d} }

// ServFail returns a fault that answers SERVFAIL.
func ServFail() Fault { return Fault{Rcode: mdns.RcodeServerFailure} }

// Refused returns a fault that answers REFUSED.
func Refused() Fault { return Fault{Rcode: mdns.RcodeRefused} }

// Drop returns a fault that never answers.
func Drop() Fault { return Fault{Drop: true} }

// Truncate returns a fault that sets TC on UDP answers.
func Truncate() Fault { return Fault{Truncate: true} }

type key struct {
	name  string // canonical
	qtype uint16
}

// rootSOA covers names outside every loaded zone.
var rootSOA = &mdns.SOA{
	Hdr: mdns.RR_Header{Name: ".", Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: 0},
	Ns:  "ns.zoneserver.", Mbox: "hostmaster.zoneserver.",
	Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 0,
}

// Server is a DNS server for tests.
type Server struct {
	mu     sync.RWMutex
	rrs    map[string][]mdns.RR // canonical owner → records, in load order
	exists map[string]bool      // owners and their ancestors
	zones  map[string]*mdns.SOA // canonical apex → SOA
	faults map[key]Fault
	counts map[key]int
	total  atomic.Int64

	udp, tcp  *mdns.Server
	addr      string
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a server holding the records of the zone files, not yet
// listening. Each file may use $ORIGIN, $TTL and $INCLUDE; names that are
// not absolute need an $ORIGIN.
func New(zoneFiles ...string) (*Server, error) {
	s := &Server{
		rrs:    make(map[string][]mdns.RR),
		exists: make(map[string]bool),
		zones:  make(map[string]*mdns.SOA),
		faults: make(map[key]Fault),
		counts: make(map[key]int),
		done:   make(chan struct{}),
	}
	for _, f := range zoneFiles {
		if err := s.loadFile(f); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("zoneserver: %w", err)
	}
	defer f.Close()
	zp := mdns.NewZoneParser(f, "", path)
	zp.SetIncludeAllowed(true)
	return s.load(zp)
}

func (s *Server) load(zp *mdns.ZoneParser) error {
	var rrs []mdns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return fmt.Errorf("zoneserver: %w", err)
	}
	s.AddRR(rrs...)
	return nil
}

// AddZone loads zone-file text; origin is the initial $ORIGIN ("" for
// the root).
func (s *Server) AddZone(text, origin string) error {
	if origin != "" {
		origin = mdns.Fqdn(origin)
	}
	return s.load(mdns.NewZoneParser(strings.NewReader(text), origin, ""))
}

// AddRecord adds one record in zone-file syntax with an absolute owner,
// e.g. "example.com. 300 IN TXT \"v=spf1 -all\"".
func (s *Server) AddRecord(rr string) error {
	r, err := mdns.NewRR(rr)
	if err != nil {
		return fmt.Errorf("zoneserver: %w", err)
	}
	if r == nil {
		return errors.New("zoneserver: no record in " + fmt.Sprintf("%q", rr))
	}
	s.AddRR(r)
	return nil
}

// AddRR adds records. An SOA makes its owner the apex of a zone. Exact
// duplicates of a record already held are dropped (an RRset is a set,
// RFC 2181 §5).
func (s *Server) AddRR(rrs ...mdns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rr := range rrs {
		rr = mdns.Copy(rr)
		h := rr.Header()
		h.Name = mdns.Fqdn(h.Name)
		if h.Class == 0 {
			h.Class = mdns.ClassINET
		}
		owner := canon(h.Name)
		dup := false
		for _, old := range s.rrs[owner] {
			if mdns.IsDuplicate(old, rr) {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		s.rrs[owner] = append(s.rrs[owner], rr)
		if soa, ok := rr.(*mdns.SOA); ok {
			s.zones[owner] = soa
		}
		for n := owner; ; {
			s.exists[n] = true
			i, end := mdns.NextLabel(n, 0)
			if end {
				break
			}
			n = n[i:]
		}
	}
}

// Fault sets the fault for queries of qtype at name; qtype 0 means every
// type not given its own fault. The zero Fault removes it.
func (s *Server) Fault(name string, qtype uint16, f Fault) {
	k := key{canon(name), qtype}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Fault{}) {
		delete(s.faults, k)
		return
	}
	s.faults[k] = f
}

// Queries returns how many queries the server has received.
func (s *Server) Queries() int { return int(s.total.Load()) }

// QueriesFor returns how many queries for name and qtype the server has
// received (qtype 0: of any type).
func (s *Server) QueriesFor(name string, qtype uint16) int {
	n := canon(name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if qtype != 0 {
		return s.counts[key{n, qtype}]
	}
	total := 0
	for k, c := range s.counts {
		if k.name == n {
			total += c
		}
	}
	return total
}

// ResetQueries sets the query counters back to zero.
func (s *Server) ResetQueries() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = make(map[key]int)
	s.total.Store(0)
}

// Addr returns the address the server listens on, UDP and TCP alike
// ("127.0.0.1:port"), or "" before Start.
func (s *Server) Addr() string { return s.addr }

// Start listens on 127.0.0.1 on a free port, the same for UDP and TCP,
// and serves in the background until Close.
func (s *Server) Start() error {
	if s.addr != "" {
		return errors.New("zoneserver: already started")
	}
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("zoneserver: %w", err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return fmt.Errorf("zoneserver: no port free for both UDP and TCP: %w", err)
	}
	s.addr = pc.LocalAddr().String()
	s.udp = &mdns.Server{PacketConn: pc, Handler: s}
	s.tcp = &mdns.Server{Listener: l, Handler: s}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	errc := make(chan error, 2)
	go func() { errc <- s.udp.ActivateAndServe() }()
	go func() { errc <- s.tcp.ActivateAndServe() }()
	for range 2 {
		select {
		case <-started:
		case err := <-errc:
			s.Close()
			return fmt.Errorf("zoneserver: %w", err)
		}
	}
	return nil
}

// Close stops the server. Delayed answers still pending are abandoned.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.done)
		if s.udp != nil {
			_ = s.udp.Shutdown()
		}
		if s.tcp != nil {
			_ = s.tcp.Shutdown()
		}
	})
}

// ServeDNS implements mdns.Handler.
func (s *Server) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	s.total.Add(1)
	resp := new(mdns.Msg)
	if len(req.Question) != 1 || req.Opcode != mdns.OpcodeQuery {
		resp.SetRcode(req, mdns.RcodeFormatError)
		_ = w.WriteMsg(resp)
		return
	}
	q := req.Question[0]
	k := key{canon(q.Name), q.Qtype}

	s.mu.Lock()
	s.counts[k]++
	f, ok := s.faults[k]
	if !ok {
		f = s.faults[key{k.name, 0}]
	}
	s.mu.Unlock()

	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-s.done:
			return
		}
	}
	if f.Drop {
		return
	}
	resp.SetReply(req)
	resp.Authoritative = true
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	size := mdns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = max(int(opt.UDPSize()), mdns.MinMsgSize)
		resp.SetEdns0(opt.UDPSize(), false)
	}
	switch {
	case f.Rcode != 0:
		resp.Rcode = f.Rcode
	case f.Truncate && !tcp:
		resp.Truncated = true
	case q.Qclass != mdns.ClassINET:
		resp.Rcode = mdns.RcodeRefused
	default:
		s.answer(resp, q.Name, q.Qtype)
		if !tcp {
			resp.Truncate(size)
		}
	}
	_ = w.WriteMsg(resp)
}

// answer fills resp for qname/qtype from the loaded data.
func (s *Server) answer(resp *mdns.Msg, qname string, qtype uint16) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	owner := qname
	seen := map[string]bool{}
	for range 16 {
		name := canon(owner)
		seen[name] = true
		rrs, ok := s.lookup(name, owner)
		if !ok {
			resp.Rcode = mdns.RcodeNameError
			resp.Ns = append(resp.Ns, s.negativeSOA(name))
			return
		}
		var cname *mdns.CNAME
		found := false
		for _, rr := range rrs {
			switch {
			case rr.Header().Rrtype == qtype || qtype == mdns.TypeANY:
				resp.Answer = append(resp.Answer, rr)
				found = true
			case rr.Header().Rrtype == mdns.TypeCNAME:
				cname = rr.(*mdns.CNAME)
			}
		}
		if found {
			return
		}
		if cname == nil {
			resp.Ns = append(resp.Ns, s.negativeSOA(name))
			return
		}
		resp.Answer = append(resp.Answer, cname)
		if seen[canon(cname.Target)] {
			return // loop: the client sees the chain and gives up
		}
		owner = cname.Target
	}
}

// lookup returns copies of the records at name (canonical), synthesising
// them from a wildcard when the name does not exist (RFC 4592 §3.3.1);
// owner is the name to put in the records. ok is false for NXDOMAIN.
func (s *Server) lookup(name, owner string) ([]mdns.RR, bool) {
	src := name
	if !s.exists[name] && name != "." {
		// The closest encloser is the nearest existing ancestor; the
		// root always exists.
		encloser := name
		for {
			i, end := mdns.NextLabel(encloser, 0)
			if end {
				encloser = "."
				break
			}
			encloser = encloser[i:]
			if s.exists[encloser] {
				break
			}
		}
		src = "*." + encloser
		if encloser == "." {
			src = "*."
		}
		if len(s.rrs[src]) == 0 {
			return nil, false
		}
	}
	out := make([]mdns.RR, 0, len(s.rrs[src]))
	for _, rr := range s.rrs[src] {
		c := mdns.Copy(rr)
		if src != name {
			c.Header().Name = owner
		}
		out = append(out, c)
	}
	return out, true
}

// negativeSOA returns the SOA of the zone enclosing name, with the
// negative-caching TTL (RFC 2308 §3).
func (s *Server) negativeSOA(name string) mdns.RR {
	soa := rootSOA
	for n := name; ; {
		if z, ok := s.zones[n]; ok {
			soa = z
			break
		}
		i, end := mdns.NextLabel(n, 0)
		if end {
			break
		}
		n = n[i:]
	}
	c := mdns.Copy(soa).(*mdns.SOA)
	c.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return c
}

// canon is the form names are compared in: fully qualified, lower case,
// and escaped the one way miekg/dns escapes names it reads from a
// message, whatever form the name was given in (a raw space or "\032").
func canon(name string) string {
	name = mdns.Fqdn(name)
	buf := make([]byte, 512)
	if n, err := mdns.PackDomainName(name, buf, 0, nil, false); err == nil {
		if s, _, err := mdns.UnpackDomainName(buf[:n], 0); err == nil {
			name = s
		}
	}
	return mdns.CanonicalName(name)
}
