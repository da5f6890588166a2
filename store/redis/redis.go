// Package redis is chainmail's shared state store: Redis through go-redis,
// standalone, behind Sentinel, or a Redis Cluster, so that several MTAs
// (each with its own chainmail) count one quota and share greylisting and
// reputation.
//
// # Keys
//
// Every key is stored under Prefix (default "chainmail:"). Plain values,
// counters (INCRBYFLOAT, numbers as text), sets (SADD) and lists (LPUSH
// and LTRIM in one script, LRANGE) use PREFIX+key.
// A sliding window is a sorted set PREFIX{w:key} (score: the event time in
// microseconds; member: "weight|random", at most about 1024 of them: see
// store.Store's WindowAdd) with its running sum in
// PREFIX{w:key}:sum; the hash tag keeps the two in one Cluster slot, so
// one Lua script (atomic on the server) trims the window, tests a cap,
// adds and returns the sum: two MTAs adding to one quota at the same
// moment can never both pass its limit. The running sum makes that O(events
// leaving the window) instead of a scan of the window; it is rebuilt from
// the members when missing.
//
// # When Redis is unreachable
//
// Timeouts are short (Timeout, default 500ms, for dial, read and write; one
// retry, which also replaces a pooled connection that died with a Redis
// restart). The first call that finds Redis unreachable (or hung: a
// SIGSTOPped server still accepts connections) opens a store.Breaker:
// from then on every call fails at once with a store.DownError (it
// matches store.ErrUnavailable) without asking Redis, and the checks let
// mail through (DESIGN failure policy), until a PING (backoff from 100ms
// up to ProbeInterval) gets an answer. The breaker logs the outage once,
// then once a minute with the number of calls failed, and the return;
// chainmail_state_up{backend="redis"} is 0 meanwhile. A call whose
// context carries a store.Budget (one per message) is bounded by what is
// left of Timeout for that message. Open itself does not fail when Redis
// is down, so chainmail starts and mail flows.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"chainmail/checks/secret"
	"chainmail/store"
)

// Options say where Redis is.
type Options struct {
	Settings
	// PoolSize is the number of connections per node (default go-redis's,
	// 10 per CPU).
	PoolSize int
	// ProbeInterval is the longest wait between two PINGs of an
	// unreachable Redis (default 1s; the first comes after 100ms).
	ProbeInterval time.Duration
	// Metrics, when set, receive chainmail_state_up and
	// chainmail_state_unavailable_total.
	Metrics *store.Metrics
	// Logf, when set, is told when Redis becomes unreachable and when it
	// is back.
	Logf func(format string, args ...any)
}

// Settings say where Redis is and how to talk to it: what a
// configuration file sets (state.redis), embedded there as it is.
type Settings struct {
	// Addrs are HOST:PORT: one server; the Sentinels when MasterName is
	// set; seed nodes of a cluster when Cluster is set.
	Addrs []string `yaml:"addrs"`
	// MasterName is the Sentinel master name ("" = no Sentinel).
	MasterName string `yaml:"sentinel_master"`
	// SentinelPassword authenticates to the Sentinels.
	SentinelPassword secret.Value `yaml:"sentinel_password"`
	// Cluster says Addrs are Redis Cluster nodes.
	Cluster bool `yaml:"cluster"`
	// Username and Password authenticate to Redis (ACL user or
	// requirepass).
	Username string       `yaml:"username"`
	Password secret.Value `yaml:"password"`
	// DB is the database number (standalone and Sentinel only).
	DB int `yaml:"db"`
	// Prefix is put before every key (default "chainmail:").
	Prefix string `yaml:"prefix"`
	// Timeout bounds dialling, reading and writing (default 500ms): how
	// long a check waits for an unreachable Redis before it lets the mail
	// through, and one message's store budget.
	Timeout time.Duration `yaml:"timeout"`
}

// Store is the Redis state store.
type Store struct {
	c      goredis.UniversalClient
	opt    Options
	prefix string
	where  string // for log lines

	br *store.Breaker

	closeOnce sync.Once
	closed    chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open makes the client and pings Redis once; an unreachable Redis is
// logged, not an error (see the package comment).
func Open(opt Options) (*Store, error) {
	if len(opt.Addrs) == 0 {
		return nil, errors.New("store: redis: no address")
	}
	if opt.Cluster && opt.DB != 0 {
		return nil, errors.New("store: redis: a Redis Cluster has only database 0")
	}
	if opt.Prefix == "" {
		opt.Prefix = "chainmail:"
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 500 * time.Millisecond
	}
	if opt.ProbeInterval <= 0 {
		opt.ProbeInterval = time.Second
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	quietOnce.Do(func() { goredis.SetLogger(quiet{}) })
	uo := &goredis.UniversalOptions{
		Addrs:              opt.Addrs,
		MasterName:         opt.MasterName,
		IsClusterMode:      opt.Cluster,
		Username:           opt.Username,
		Password:           string(opt.Password),
		SentinelPassword:   string(opt.SentinelPassword),
		DB:                 opt.DB,
		DialTimeout:        opt.Timeout,
		ReadTimeout:        opt.Timeout,
		WriteTimeout:       opt.Timeout,
		PoolTimeout:        opt.Timeout,
		PoolSize:           opt.PoolSize,
		MaxRetries:         1,
		MinRetryBackoff:    10 * time.Millisecond,
		MaxRetryBackoff:    100 * time.Millisecond,
		DialerRetries:      1,
		DialerRetryTimeout: 50 * time.Millisecond,
		// A check's deadline ends a call too.
		ContextTimeoutEnabled: true,
		// Cluster: follow MOVED/ASK a few times only.
		MaxRedirects: 3,
		// No client-side "maintenance notifications" handshake: plain
		// Redis and Sentinel do not know it.
		DisableIdentity: true,
	}
	var c goredis.UniversalClient
	switch {
	case opt.MasterName != "":
		c = goredis.NewFailoverClient(uo.Failover())
	case opt.Cluster:
		c = goredis.NewClusterClient(uo.Cluster())
	default:
		if len(opt.Addrs) > 1 {
			return nil, errors.New("store: redis: several addresses need cluster or a Sentinel master name")
		}
		c = goredis.NewClient(uo.Simple())
	}
	s := &Store{
		c:      c,
		opt:    opt,
		prefix: opt.Prefix,
		where:  describe(opt),
		closed: make(chan struct{}),
	}
	s.br = &store.Breaker{
		Backend: "redis " + s.where, Label: "redis",
		Probe:        func(ctx context.Context) error { return c.Ping(ctx).Err() },
		ProbeTimeout: opt.Timeout,
		MinBackoff:   min(100*time.Millisecond, opt.ProbeInterval),
		MaxBackoff:   opt.ProbeInterval,
		Metrics:      opt.Metrics, Logf: opt.Logf,
	}
	s.br.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 2*opt.Timeout)
	start := time.Now()
	s.observe(ctx, start, c.Ping(ctx).Err())
	cancel()
	return s, nil
}

// go-redis writes a line to stderr for every failed dial, which floods
// the log during an outage; the store logs outages itself (the first
// failure, once a minute while it lasts, the return). go-redis offers only
// a process-wide logger, set once here.
var quietOnce sync.Once

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func describe(o Options) string {
	switch {
	case o.MasterName != "":
		return fmt.Sprintf("master %q via sentinels %s", o.MasterName, strings.Join(o.Addrs, ","))
	case o.Cluster:
		return "cluster " + strings.Join(o.Addrs, ",")
	}
	return o.Addrs[0]
}

// Client returns the go-redis client (for tests and diagnostics).
func (s *Store) Client() goredis.UniversalClient { return s.c }

// Close closes the client.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		s.br.Stop()
		err = s.c.Close()
	})
	return err
}

// unreachable tells errors that mean "Redis cannot serve us now" from
// errors of the command itself.
func unreachable(err error) bool {
	if err == nil || errors.Is(err, goredis.Nil) {
		return false
	}
	var re goredis.Error
	if errors.As(err, &re) {
		// The server answered; only these answers mean it cannot serve.
		return goredis.IsLoadingError(err) || goredis.IsClusterDownError(err) || goredis.IsTryAgainError(err) ||
			goredis.IsMasterDownError(err) || goredis.IsMaxClientsError(err) || goredis.IsReadOnlyError(err) ||
			goredis.IsAuthError(err) || goredis.IsNoReplicasError(err) || goredis.IsOOMError(err)
	}
	// Network errors, timeouts, pool timeouts, a closed client.
	return true
}

// observe tells the breaker the outcome of one call started at start
// with ctx and returns err wrapped: a store.DownError (matching
// store.ErrUnavailable) when Redis is unreachable.
func (s *Store) observe(ctx context.Context, start time.Time, err error) error {
	if err != nil && errors.Is(err, goredis.Nil) {
		err = nil
	}
	if err == nil {
		s.br.Succeeded()
		return nil
	}
	if ctx.Err() != nil && (errors.Is(ctx.Err(), context.Canceled) || time.Since(start) < s.opt.Timeout) {
		// The caller gave up (its session ended) or its own deadline (a
		// check's, the message's store budget) came before the store's
		// timeout: no answer for it, but nothing learnt about Redis.
		return fmt.Errorf("%w: redis: %v", store.ErrUnavailable, err)
	}
	if unreachable(err) {
		return s.br.Failed(err)
	}
	s.br.Succeeded() // it answered
	return fmt.Errorf("store: redis: %w", err)
}

// Down reports whether Redis is known unreachable (the breaker is open).
func (s *Store) Down() bool { return s.br.Open() }

func (s *Store) key(k string) string { return s.prefix + k }

// windowKeys are the sorted set and the running sum of a window; the hash
// tag ("{w:" key "}", never empty) puts both in one Cluster slot.
func (s *Store) windowKeys(k string) []string {
	z := s.prefix + "{w:" + k + "}"
	return []string{z, z + ":sum"}
}

// windowScript trims a window, optionally adds (mode "add") or adds under
// a cap (mode "cap"), and returns {sum, added}.
//
//	KEYS: zset, running sum
//	ARGV: at µs, cutoff µs, weight, member suffix, mode (sum|add|cap), cap,
//	      ttl ms, granule µs
//
// Numbers cross into Lua as strings: Lua 5.1 formats numbers with 14
// digits, too few for microsecond times. An event in the granule of the
// newest one is merged into it (store.Store's WindowAdd), which keeps a
// window at about 1024 members whatever the traffic.
var windowScript = goredis.NewScript(`
local function weight(m)
  return tonumber(string.match(m, '^([^|]*)|')) or 0
end
local sum, changed = 0, false
if redis.call('ZCARD', KEYS[1]) > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
  if #old > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
    changed = true
  end
  local s = redis.call('GET', KEYS[2])
  if s then
    sum = tonumber(s)
    for _, m in ipairs(old) do sum = sum - weight(m) end
  else
    for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do sum = sum + weight(m) end
    changed = true
  end
end
local w = tonumber(ARGV[3])
local added = 0
if ARGV[5] == 'add' or (ARGV[5] == 'cap' and sum + w <= tonumber(ARGV[6])) then
  local g, score, merged = tonumber(ARGV[8]), ARGV[1], w
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if #last == 2 and math.floor(tonumber(last[2]) / g) == math.floor(tonumber(ARGV[1]) / g) then
    redis.call('ZREM', KEYS[1], last[1])
    merged = weight(last[1]) + w
    if tonumber(last[2]) > tonumber(ARGV[1]) then score = last[2] end
  end
  redis.call('ZADD', KEYS[1], score, string.format('%.17g', merged) .. '|' .. ARGV[4])
  sum = sum + w
  added = 1
end
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'0', added}
end
if sum < 0 then sum = 0 end
local fs = string.format('%.17g', sum)
if added == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('SET', KEYS[2], fs, 'PX', ARGV[7])
elseif changed then
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl > 0 then
    redis.call('SET', KEYS[2], fs, 'PX', pttl)
  else
    redis.call('SET', KEYS[2], fs)
  end
end
return {fs, added}
`)

// incrScript is INCRBYFLOAT with an expiry, atomically.
var incrScript = goredis.NewScript(`
local v = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
`)

// setAddScript is SADD with an expiry, atomically.
var setAddScript = goredis.NewScript(`
local n = redis.call('SADD', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
`)

// listPushScript is LPUSH and LTRIM in one atomic step: two MTAs pushing
// at once never leave more than max items, nor trim each other's new one.
var listPushScript = goredis.NewScript(`
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
return redis.call('LLEN', KEYS[1])
`)

// ms is a ttl in whole milliseconds, at least 1 for a positive ttl.
func ms(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	n := int64((d + time.Millisecond - 1) / time.Millisecond)
	if n < 1 {
		n = 1
	}
	return n
}

func micros(t time.Time) int64 { return t.UnixMicro() }

// granules is how many slices a window is cut into for merging events.
const granules = 1024

// suffix makes a window member unique across MTAs ("weight|suffix").
func suffix() string {
	var b [8]byte
	rand.Read(b[:])
	return strconv.FormatUint(binary.LittleEndian.Uint64(b[:]), 36)
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// scripted is one script call of a batch.
type scripted struct {
	op     *store.Op
	script *goredis.Script
	keys   []string
	args   []any
	cmd    *goredis.Cmd
}

// Do runs ops in one pipeline.
func (s *Store) Do(ctx context.Context, ops ...*store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	select {
	case <-s.closed:
		err := fmt.Errorf("%w: redis: closed", store.ErrUnavailable)
		for _, op := range ops {
			op.Err = err
		}
		return err
	default:
	}
	fail := func(err error) error {
		for _, op := range ops {
			op.Err = err
		}
		return err
	}
	// A Redis known down is not asked: the call fails at once.
	if err := s.br.Allow(); err != nil {
		return fail(err)
	}
	ctx, spent, err := store.Spend(ctx, s.opt.Timeout)
	if err != nil {
		if m := s.opt.Metrics; m != nil {
			m.Unavailable.WithLabelValues("redis").Inc()
		}
		return fail(err)
	}
	defer spent()
	start := time.Now()
	pipe := s.c.Pipeline()
	type plain struct {
		op   *store.Op
		cmds []goredis.Cmder
	}
	var plains []plain
	var scripts []*scripted
	var bad []*store.Op
	for _, op := range ops {
		op.Out, op.Outs, op.OK, op.Num, op.Err = nil, nil, false, 0, nil
		switch op.Kind {
		case store.OpGet:
			plains = append(plains, plain{op, []goredis.Cmder{pipe.Get(ctx, s.key(op.Key))}})
		case store.OpSet:
			plains = append(plains, plain{op, []goredis.Cmder{pipe.Set(ctx, s.key(op.Key), op.Val, time.Duration(ms(op.TTL))*time.Millisecond)}})
		case store.OpSetNX:
			plains = append(plains, plain{op, []goredis.Cmder{pipe.SetNX(ctx, s.key(op.Key), op.Val, time.Duration(ms(op.TTL))*time.Millisecond)}})
		case store.OpDelete:
			wk := s.windowKeys(op.Key)
			// One DEL per key: in a cluster they live in different slots.
			plains = append(plains, plain{op, []goredis.Cmder{pipe.Del(ctx, s.key(op.Key)), pipe.Del(ctx, wk[0]), pipe.Del(ctx, wk[1])}})
		case store.OpSetHas:
			plains = append(plains, plain{op, []goredis.Cmder{pipe.SIsMember(ctx, s.key(op.Key), op.Member)}})
		case store.OpSetLen:
			plains = append(plains, plain{op, []goredis.Cmder{pipe.SCard(ctx, s.key(op.Key))}})
		case store.OpListRange:
			plains = append(plains, plain{op, []goredis.Cmder{pipe.LRange(ctx, s.key(op.Key), int64(op.Start), int64(op.Stop))}})
		case store.OpListPush:
			n, err := store.ListMax(op)
			if err != nil {
				op.Err = err
				bad = append(bad, op)
				continue
			}
			scripts = append(scripts, &scripted{op: op, script: listPushScript, keys: []string{s.key(op.Key)}, args: []any{op.Val, n}})
		case store.OpIncrBy:
			scripts = append(scripts, &scripted{op: op, script: incrScript, keys: []string{s.key(op.Key)}, args: []any{fmtFloat(op.N), ms(op.TTL)}})
		case store.OpSetAdd:
			scripts = append(scripts, &scripted{op: op, script: setAddScript, keys: []string{s.key(op.Key)}, args: []any{op.Member, ms(op.TTL)}})
		case store.OpWindowAdd, store.OpWindowAddCapped, store.OpWindowSum:
			mode := map[store.Kind]string{store.OpWindowAdd: "add", store.OpWindowAddCapped: "cap", store.OpWindowSum: "sum"}[op.Kind]
			at := micros(op.At)
			cutoff := at - op.TTL.Microseconds()
			ttl := ms(op.TTL)
			if ttl == 0 {
				ttl = 1
			}
			granule := op.TTL.Microseconds() / granules
			if granule < 1 {
				granule = 1
			}
			scripts = append(scripts, &scripted{op: op, script: windowScript, keys: s.windowKeys(op.Key),
				args: []any{at, cutoff, fmtFloat(op.N), suffix(), mode, fmtFloat(op.Max), ttl, granule}})
		default:
			op.Err = fmt.Errorf("store: redis: unknown operation %v", op.Kind)
			bad = append(bad, op)
		}
	}
	for _, sc := range scripts {
		sc.cmd = pipe.EvalSha(ctx, sc.script.Hash(), sc.keys, sc.args...)
	}
	_, execErr := pipe.Exec(ctx)
	// A script the server does not know yet (first use, Redis restarted,
	// a cluster failover): run those again with EVALSHA→EVAL fallback.
	// Only those: the rest of the batch did run.
	for _, sc := range scripts {
		if err := sc.cmd.Err(); err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			sc.cmd = sc.script.Run(ctx, s.c, sc.keys, sc.args...)
		}
	}

	var first error
	note := func(op *store.Op, err error) {
		op.Err = err
		if err != nil && first == nil {
			first = err
		}
	}
	for _, op := range bad {
		note(op, op.Err)
	}
	var seen error
	for _, p := range plains {
		var err error
		for _, c := range p.cmds {
			if e := c.Err(); e != nil && !errors.Is(e, goredis.Nil) && err == nil {
				err = e
			}
		}
		if err == nil {
			switch c := p.cmds[0].(type) {
			case *goredis.StringCmd:
				if b, e := c.Bytes(); e == nil {
					p.op.Out, p.op.OK = b, true
				}
			case *goredis.BoolCmd:
				p.op.OK = c.Val()
			case *goredis.IntCmd:
				p.op.Num = float64(c.Val())
			case *goredis.StringSliceCmd:
				for _, v := range c.Val() {
					p.op.Outs = append(p.op.Outs, []byte(v))
				}
			}
		}
		seen = errors.Join(seen, err)
		note(p.op, s.wrap(err))
	}
	for _, sc := range scripts {
		err := sc.cmd.Err()
		if err == nil {
			err = parseScript(sc)
		}
		seen = errors.Join(seen, err)
		note(sc.op, s.wrap(err))
	}
	if seen == nil && execErr != nil && !errors.Is(execErr, goredis.Nil) {
		seen = execErr
	}
	// One observation per batch for the up/down state.
	if err := s.observe(ctx, start, firstOf(seen)); err != nil && errors.Is(err, store.ErrUnavailable) {
		return fail(err)
	}
	return first
}

// firstOf unwraps errors.Join's list to its first error.
func firstOf(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if es := j.Unwrap(); len(es) > 0 {
			return es[0]
		}
	}
	return err
}

// wrap marks an error of one command (without touching the up/down
// state, which Do observes once per batch).
func (s *Store) wrap(err error) error {
	switch {
	case err == nil || errors.Is(err, goredis.Nil):
		return nil
	case unreachable(err):
		return fmt.Errorf("%w: redis: %v", store.ErrUnavailable, err)
	}
	return fmt.Errorf("store: redis: %w", err)
}

func parseScript(sc *scripted) error {
	switch sc.op.Kind {
	case store.OpIncrBy:
		v, err := sc.cmd.Text()
		if err != nil {
			return err
		}
		sc.op.Num, err = strconv.ParseFloat(v, 64)
		return err
	case store.OpSetAdd:
		n, err := sc.cmd.Int64()
		sc.op.OK = n == 1
		return err
	case store.OpListPush:
		n, err := sc.cmd.Int64()
		sc.op.Num = float64(n)
		return err
	}
	vals, err := sc.cmd.Slice()
	if err != nil {
		return err
	}
	if len(vals) != 2 {
		return fmt.Errorf("window script returned %d values", len(vals))
	}
	str, _ := vals[0].(string)
	if sc.op.Num, err = strconv.ParseFloat(str, 64); err != nil {
		return fmt.Errorf("window script returned sum %q", str)
	}
	added, _ := vals[1].(int64)
	if sc.op.Kind != store.OpWindowSum {
		sc.op.OK = added == 1
	}
	return nil
}
