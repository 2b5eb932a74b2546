package groqwebhook

// The Redis queue keeps a queue in Redis, where every Caddy instance that
// names the same Redis, key_prefix and queue name works on it: any instance
// may deliver any event, and the events an instance had accepted or was
// delivering when it died are delivered by the others.
//
// Keys, all under one hash tag so that every script runs on one Redis
// Cluster slot (<P> is <key_prefix>{<name>}:):
//
//	<P>S         stream of events due now: fields id and at (due, unix ns);
//	             consumer group "deliver", one consumer per open store
//	<P>R         sorted set of events waiting for a retry, by due time (µs)
//	<P>D         sorted set of dead letters, by the time they died (µs)
//	<P>W         sorted set of the waiting events' ids (queued, retrying or
//	             in flight), all scored 0: ids sort by receipt time
//	<P>T         sorted set of delivered keys, by the end of their keep time
//	<P>E:<id>    hash: m the metadata (JSON), b the body, k the
//	             de-duplication key, s the stream entry while it has one
//	<P>k:<key>   the id of the event with this key, or "delivered:<µs>"
//	             (with a matching expiry) once it was delivered
//
// An event is in exactly one of S, R and D. Taking it reads it from the
// stream with XREADGROUP; delivering it removes its entry with XACK and
// XDEL (streams are never trimmed with MAXLEN, which would drop entries
// not yet acknowledged); a retry moves it to R and a later Take back to the
// stream. An entry that stays pending longer than takeover_after belongs to
// an instance that died: XAUTOCLAIM hands it to the next one that takes.
// Every change is one Lua script, atomic on the server.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(RedisQueue{})
}

// Defaults and limits of the Redis queue.
const (
	DefaultRedisQueueKeyPrefix = "groq_webhook:queue:"
	// redisTakeoverMargin is how much longer than an attempt (plus the
	// Redis call that records its outcome) the takeover idle time must
	// be, so that no attempt still running is taken over.
	redisTakeoverMargin = 5 * time.Second
	// defaultTakeoverSlack is what the default takeover time adds to the
	// longest an attempt and its outcome can take.
	defaultTakeoverSlack = 30 * time.Second
	redisGroup           = "deliver"
	// redisChunk bounds what one script call replays or expires.
	redisChunk = 512
)

// RedisQueue keeps a queue in Redis (Streams with a consumer group), shared
// by every Caddy instance configured with the same Redis, key_prefix and
// name. Bodies are stored in Redis too: Caddy's memory does not grow with
// the backlog.
type RedisQueue struct {
	QueueOptions
	RedisConnection

	// Prefix of the queue's keys; the queue's name follows in a hash tag,
	// {name}, so that all its keys are on one Redis Cluster slot.
	// Default: groq_webhook:queue:.
	KeyPrefix string `json:"key_prefix,omitempty"`

	// How long an attempt may stay unanswered before another instance
	// takes the event over, taking the instance that started it for dead.
	// It must be longer than attempt_timeout plus timeout plus 5s, or an
	// attempt still running would be delivered twice. Default:
	// attempt_timeout + timeout + 30s.
	TakeoverAfter caddy.Duration `json:"takeover_after,omitempty"`

	// How many replicas must have an accepted event before the sender gets
	// 202 (Redis WAIT). If they do not within timeout, the sender gets 503
	// and retries; the copy already accepted makes that retry a duplicate.
	// Default: 0 (the master's acknowledgement is enough).
	WaitReplicas int `json:"wait_replicas,omitempty"`

	clientOpts *redis.UniversalOptions
}

// CaddyModule returns the Caddy module information.
func (RedisQueue) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.groq_webhook.queue.redis",
		New: func() caddy.Module { return new(RedisQueue) },
	}
}

// Options implements QueueBackend.
func (q *RedisQueue) Options() *QueueOptions { return &q.QueueOptions }

// Provision checks the settings and prepares the connection; it does not
// connect.
func (q *RedisQueue) Provision(caddy.Context) error {
	opts, err := q.RedisConnection.provision("queue redis")
	if err != nil {
		return err
	}
	q.clientOpts = opts
	q.QueueOptions.provision()
	if q.KeyPrefix == "" {
		q.KeyPrefix = DefaultRedisQueueKeyPrefix
	}
	if strings.ContainsAny(q.KeyPrefix, "{}") {
		return fmt.Errorf("queue redis key_prefix %q must not contain { or }: the queue's name is its hash tag", q.KeyPrefix)
	}
	if strings.ContainsAny(q.Name, "{}") {
		return fmt.Errorf("queue redis name %q must not contain { or }: it is the keys' hash tag", q.Name)
	}
	least := time.Duration(q.AttemptTimeout) + time.Duration(q.Timeout) + redisTakeoverMargin
	if q.TakeoverAfter == 0 {
		q.TakeoverAfter = caddy.Duration(time.Duration(q.AttemptTimeout) + time.Duration(q.Timeout) + defaultTakeoverSlack)
	}
	if time.Duration(q.TakeoverAfter) <= least {
		return fmt.Errorf("queue redis takeover_after %s must be longer than attempt_timeout (%s) + timeout (%s) + %s: "+
			"an attempt still running would be taken over and delivered twice",
			time.Duration(q.TakeoverAfter), time.Duration(q.AttemptTimeout), time.Duration(q.Timeout), redisTakeoverMargin)
	}
	if q.WaitReplicas < 0 {
		return fmt.Errorf("queue redis wait_replicas must not be negative, got %d", q.WaitReplicas)
	}
	return nil
}

// Open implements QueueBackend: it connects, creates the consumer group if
// there is none, and warns once if the server's persistence settings can
// lose events a sender was told were accepted.
func (q *RedisQueue) Open(ctx caddy.Context) (QueueStore, error) {
	if q.clientOpts == nil {
		if err := q.Provision(ctx); err != nil {
			return nil, err
		}
	}
	s := newRedisQueueStore(redis.NewUniversalClient(q.clientOpts), q.KeyPrefix, q.Name,
		time.Duration(q.Timeout), time.Duration(q.TakeoverAfter), q.WaitReplicas)
	if err := s.createGroup(ctx); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("queue redis %q: %w", q.Name, err)
	}
	s.checkPersistence(ctx, ctx.Logger())
	return s, nil
}

// redisQueueStore is the QueueStore of a RedisQueue.
type redisQueueStore struct {
	client   redis.UniversalClient
	prefix   string // <key_prefix>{<name>}:
	consumer string // this store's consumer in the group
	timeout  time.Duration
	takeover time.Duration
	replicas int

	stream, retries, dead, waiting, kept string
	closed                               atomic.Bool
	// lastClaim is when Take last looked for attempts to take over (unix
	// ns): once per claimInterval is enough, and it spares Redis a scan of
	// the pending entries on every Take.
	lastClaim atomic.Int64

	// taken holds the ids this store handed out and that have not been
	// acknowledged, retried or buried; lost is set when a Take failed
	// after Redis may have run it: its entries are pending for this
	// consumer with no attempt, and the next Take hands them out again
	// instead of leaving them for takeover_after.
	mu    sync.Mutex
	taken map[string]bool
	lost  atomic.Bool
}

// claimInterval is how often Take looks for attempts to take over: an
// attempt is taken over between takeover_after and takeover_after plus
// this.
const claimInterval = time.Second

var errRedisQueueClosed = errors.New("queue redis: store closed")

func newRedisQueueStore(client redis.UniversalClient, keyPrefix, name string, timeout, takeover time.Duration, replicas int) *redisQueueStore {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	p := keyPrefix + "{" + name + "}:"
	return &redisQueueStore{
		client: client, prefix: p,
		consumer: fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:])),
		timeout:  timeout, takeover: takeover, replicas: replicas,
		stream: p + "S", retries: p + "R", dead: p + "D", waiting: p + "W", kept: p + "T",
		taken: make(map[string]bool),
	}
}

func (s *redisQueueStore) eventKey(id string) string { return s.prefix + "E:" + id }
func (s *redisQueueStore) keyKey(key string) string  { return s.prefix + "k:" + key }

// call bounds one store call by the timeout, and fails once the store is
// closed.
func (s *redisQueueStore) call(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, errRedisQueueClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	return ctx, cancel, nil
}

// createGroup creates the consumer group, reading the stream from its
// start: a group lost with a Redis that kept its data but not the group
// must not skip the events already in the stream.
func (s *redisQueueStore) createGroup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.client.XGroupCreateMkStream(ctx, s.stream, redisGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("creating consumer group: %w", err)
	}
	return nil
}

// node is the client for the server holding the queue's keys: with a
// Cluster, the master of their slot, for commands that must reach that
// server itself (CONFIG, WAIT on the connection that wrote).
func (s *redisQueueStore) node(ctx context.Context) (*redis.Client, error) {
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, s.stream)
	case *redis.Client:
		return c, nil
	}
	return nil, fmt.Errorf("redis client %T has no single node", s.client)
}

// checkPersistence logs one warning when a Redis restart would lose
// accepted events. A server that refuses CONFIG (managed services often
// do) is not an error.
func (s *redisQueueStore) checkPersistence(ctx context.Context, logger *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	node, err := s.node(ctx)
	if err != nil {
		return
	}
	settings, err := node.ConfigGet(ctx, "append*").Result()
	if err != nil {
		logger.Debug("queue redis: the server's persistence settings cannot be read", zap.Error(err))
		return
	}
	if settings["appendonly"] == "no" {
		logger.Warn("queue redis: the server runs with appendonly no: events answered 202 are lost if Redis restarts; "+
			"set appendonly yes and appendfsync always (or everysec, losing at most the last second)",
			zap.String("queue_keys", s.prefix), zap.String("appendfsync", settings["appendfsync"]))
	}
}

// The scripts. KEYS[1] is always the stream, so that a Cluster client
// sends the script to the slot of the queue; every other key shares its
// hash tag. Times: "at" in the stream is unix ns; sorted-set scores are
// unix µs, exact in a double.
var (
	// acceptScript: KEYS stream, waiting, event, key; ARGV id, meta,
	// body, dedupe key, max waiting, now (ns), now (µs). It answers 0
	// (accepted), 1 (duplicate) or 2 (full).
	acceptScript = redis.NewScript(`
local key = ARGV[4]
if key ~= '' then
	local held = redis.call('GET', KEYS[4])
	if held then
		if string.sub(held, 1, 10) ~= 'delivered:' then return 1 end
		if tonumber(string.sub(held, 11)) > tonumber(ARGV[7]) then return 1 end
	end
end
local max = tonumber(ARGV[5])
if max > 0 and redis.call('ZCARD', KEYS[2]) >= max then return 2 end
local sid = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'at', ARGV[6])
redis.call('HSET', KEYS[3], 'm', ARGV[2], 'b', ARGV[3], 'k', key, 's', sid)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if key ~= '' then redis.call('SET', KEYS[4], ARGV[1]) end
return 0
`)

	// takeScript: KEYS stream, retries; ARGV prefix, group, consumer, n,
	// now (µs), takeover idle (ms), "1" to look for entries to take over,
	// and how many of this consumer's own pending entries to read again (0
	// for none). It moves due retries into the stream, reads its own
	// pending entries again, takes over entries idle too long, and reads
	// new ones. It answers when the next event is due, as the due time
	// (ns) of the first stream entry the group has not read and the score
	// of the first retry (each false when there is none), then id,
	// metadata, body for each event taken. A stream entry whose event no
	// longer points at it is stale (the event moved on) and is removed.
	takeScript = redis.NewScript(`
local P, G, C, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[5], 'WITHSCORES', 'LIMIT', 0, n)
for i = 1, #due, 2 do
	local id = due[i]
	redis.call('ZREM', KEYS[2], id)
	local E = P .. 'E:' .. id
	if redis.call('EXISTS', E) == 1 then
		local at = string.format('%d', tonumber(due[i + 1])) .. '000'
		redis.call('HSET', E, 's', redis.call('XADD', KEYS[1], '*', 'id', id, 'at', at))
	end
end
local got, seen = {}, {}
local function add(e)
	if e and e[2] and not seen[e[1]] then
		seen[e[1]] = true
		table.insert(got, e)
	end
end
if tonumber(ARGV[8]) > 0 then
	local own = redis.call('XREADGROUP', 'GROUP', G, C, 'COUNT', ARGV[8], 'STREAMS', KEYS[1], '0')
	if own then
		for _, e in ipairs(own[1][2]) do add(e) end
	end
end
if ARGV[7] == '1' then
	local claimed = redis.call('XAUTOCLAIM', KEYS[1], G, C, ARGV[6], '0-0', 'COUNT', n)
	for _, e in ipairs(claimed[2]) do add(e) end
end
-- unread: whether entries may be left that the group has not read.
local unread = true
if #got < n then
	local want = n - #got
	local r = redis.call('XREADGROUP', 'GROUP', G, C, 'COUNT', want, 'STREAMS', KEYS[1], '>')
	local read = 0
	if r then
		read = #r[1][2]
		for _, e in ipairs(r[1][2]) do add(e) end
	end
	unread = read == want
end
local first, retry = false, false
local rs = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #rs > 0 then retry = rs[2] end
if unread then
	local groups = redis.pcall('XINFO', 'GROUPS', KEYS[1])
	if type(groups) ~= 'table' or groups.err then groups = {} end
	for _, g in ipairs(groups) do
		local name, last = nil, nil
		for j = 1, #g, 2 do
			if g[j] == 'name' then name = g[j + 1] end
			if g[j] == 'last-delivered-id' then last = g[j + 1] end
		end
		if name == G then
			local e = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)
			if #e > 0 then
				local f = e[1][2]
				for j = 1, #f, 2 do
					if f[j] == 'at' then first = f[j + 1] end
				end
			end
		end
	end
end
local out = {first, retry}
for _, e in ipairs(got) do
	local sid, f, id = e[1], e[2], nil
	for j = 1, #f, 2 do
		if f[j] == 'id' then id = f[j + 1] end
	end
	local v = {false, false, false}
	if id then v = redis.call('HMGET', P .. 'E:' .. id, 'm', 'b', 's') end
	if v[1] and v[3] == sid then
		table.insert(out, id)
		table.insert(out, v[1])
		table.insert(out, v[2])
	else
		redis.call('XACK', KEYS[1], G, sid)
		redis.call('XDEL', KEYS[1], sid)
	end
end
return out
`)

	// ackScript: KEYS stream, waiting, retries, kept; ARGV prefix, group,
	// id, keep (ms), keep until (µs). It answers 0 when there is no such
	// event.
	ackScript = redis.NewScript(`
local P, G, id = ARGV[1], ARGV[2], ARGV[3]
local E = P .. 'E:' .. id
if redis.call('EXISTS', E) == 0 then return 0 end
local v = redis.call('HMGET', E, 's', 'k')
if v[1] and v[1] ~= '' then
	redis.call('XACK', KEYS[1], G, v[1])
	redis.call('XDEL', KEYS[1], v[1])
end
redis.call('DEL', E)
redis.call('ZREM', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
local key = v[2]
if key and key ~= '' then
	local K = P .. 'k:' .. key
	if redis.call('GET', K) == id then
		if tonumber(ARGV[4]) > 0 then
			redis.call('SET', K, 'delivered:' .. ARGV[5], 'PX', ARGV[4])
			redis.call('ZADD', KEYS[4], ARGV[5], key)
		else
			redis.call('DEL', K)
		end
	end
end
return 1
`)

	// moveScript: KEYS stream, retries, waiting, dead; ARGV prefix, group,
	// id, meta, score (µs), to ("R" or "D"). It ends the event's stream
	// entry, stores its metadata, and puts it in the retries or the dead
	// letters. It answers 0 when there is no such event.
	moveScript = redis.NewScript(`
local P, G, id = ARGV[1], ARGV[2], ARGV[3]
local E = P .. 'E:' .. id
if redis.call('EXISTS', E) == 0 then return 0 end
local sid = redis.call('HGET', E, 's')
if sid and sid ~= '' then
	redis.call('XACK', KEYS[1], G, sid)
	redis.call('XDEL', KEYS[1], sid)
end
redis.call('HSET', E, 'm', ARGV[4], 's', '')
if ARGV[6] == 'R' then
	redis.call('ZADD', KEYS[2], ARGV[5], id)
else
	redis.call('ZREM', KEYS[2], id)
	redis.call('ZREM', KEYS[3], id)
	redis.call('ZADD', KEYS[4], ARGV[5], id)
end
return 1
`)

	// replayScript: KEYS stream, waiting, dead; ARGV prefix, now (ns),
	// then id and metadata pairs. Each event still dead is due at once.
	replayScript = redis.NewScript(`
local P, n = ARGV[1], 0
for i = 3, #ARGV, 2 do
	local id = ARGV[i]
	if redis.call('ZSCORE', KEYS[3], id) then
		redis.call('ZREM', KEYS[3], id)
		local sid = redis.call('XADD', KEYS[1], '*', 'id', id, 'at', ARGV[2])
		redis.call('HSET', P .. 'E:' .. id, 'm', ARGV[i + 1], 's', sid)
		redis.call('ZADD', KEYS[2], 0, id)
		n = n + 1
	end
end
return n
`)

	// expireScript: KEYS stream, dead, kept; ARGV prefix, dead before
	// (µs), now (µs), chunk, and optionally the id of one dead letter to
	// drop. It deletes dead letters (with their keys) and forgets delivered
	// keys whose time is over, and answers how many of each.
	expireScript = redis.NewScript(`
local P = ARGV[1]
local dead
if ARGV[5] then
	dead = {}
	if redis.call('ZSCORE', KEYS[2], ARGV[5]) then dead = {ARGV[5]} end
else
	dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
end
for _, id in ipairs(dead) do
	local E = P .. 'E:' .. id
	local key = redis.call('HGET', E, 'k')
	redis.call('ZREM', KEYS[2], id)
	redis.call('DEL', E)
	if key and key ~= '' and redis.call('GET', P .. 'k:' .. key) == id then
		redis.call('DEL', P .. 'k:' .. key)
	end
end
local keys = {}
if not ARGV[5] then
	keys = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
end
for _, key in ipairs(keys) do
	redis.call('ZREM', KEYS[3], key)
	local K = P .. 'k:' .. key
	local held = redis.call('GET', K)
	if held and string.sub(held, 1, 10) == 'delivered:' and tonumber(string.sub(held, 11)) <= tonumber(ARGV[3]) then
		redis.call('DEL', K)
	end
end
return {#dead, #keys}
`)

	// releaseScript: KEYS stream, retries; ARGV prefix, group, consumer,
	// now (µs). The entries pending for this consumer are due again at
	// once, for any instance, and the consumer leaves the group.
	releasePendingScript = redis.NewScript(`
local P, G, C = ARGV[1], ARGV[2], ARGV[3]
local pending = redis.call('XPENDING', KEYS[1], G, '-', '+', 100000, C)
for _, p in ipairs(pending) do
	local sid = p[1]
	local e = redis.call('XRANGE', KEYS[1], sid, sid)
	if #e > 0 then
		local f, id = e[1][2], nil
		for j = 1, #f, 2 do
			if f[j] == 'id' then id = f[j + 1] end
		end
		if id and redis.call('HGET', P .. 'E:' .. id, 's') == sid then
			redis.call('HSET', P .. 'E:' .. id, 's', '')
			redis.call('ZADD', KEYS[2], ARGV[4], id)
		end
	end
	redis.call('XACK', KEYS[1], G, sid)
	redis.call('XDEL', KEYS[1], sid)
end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], G, C)
return #pending
`)
)

// micros is t in unix µs, the unit of the sorted sets' scores.
func micros(t time.Time) string { return strconv.FormatInt(t.UnixMicro(), 10) }

// isNoGroup reports a consumer group that is gone: a Redis that restarted
// without its data.
func isNoGroup(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOGROUP") }

// Accept implements QueueStore. With wait_replicas, the event is
// acknowledged by that many replicas too, or the call fails (the event is
// then stored, and a retry of the sender is a duplicate).
func (s *redisQueueStore) Accept(ctx context.Context, ev *QueuedEvent, maxWaiting int) error {
	if s.closed.Load() {
		return errRedisQueueClosed
	}
	id := newQueueID(ev.ReceivedAt)
	stored := *ev
	stored.ID, stored.DeadAt, stored.Attempts = id, time.Time{}, 0
	meta, err := json.Marshal(&stored)
	if err != nil {
		return fmt.Errorf("queue redis: encoding event: %w", err)
	}
	now := time.Now()
	keys := []string{s.stream, s.waiting, s.eventKey(id), s.keyKey(ev.Key)}
	args := []any{id, meta, ev.Body, ev.Key, maxWaiting, strconv.FormatInt(now.UnixNano(), 10), micros(now)}

	scriptCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var res int
	if s.replicas == 0 {
		res, err = acceptScript.Run(scriptCtx, s.client, keys, args...).Int()
	} else {
		// WAIT counts the writes of the connection it is sent on: the
		// script and the WAIT share one.
		node, nerr := s.node(scriptCtx)
		if nerr != nil {
			return fmt.Errorf("queue redis: accepting event: %w", nerr)
		}
		conn := node.Conn()
		defer conn.Close()
		res, err = acceptScript.Run(scriptCtx, conn, keys, args...).Int()
		if err == nil && res == 0 {
			if err := s.waitReplicas(ctx, conn); err != nil {
				return err
			}
		}
	}
	if err != nil {
		return fmt.Errorf("queue redis: accepting event: %w", err)
	}
	switch res {
	case 1:
		return ErrQueueDuplicate
	case 2:
		return ErrQueueFull
	}
	ev.ID = id
	return nil
}

// waitReplicas waits until wait_replicas replicas have the writes made on
// conn, for at most the timeout.
func (s *redisQueueStore) waitReplicas(ctx context.Context, conn *redis.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout+time.Second)
	defer cancel()
	n, err := conn.Wait(ctx, s.replicas, s.timeout).Result()
	if err != nil {
		return fmt.Errorf("queue redis: waiting for replicas: %w", err)
	}
	if int(n) < s.replicas {
		return fmt.Errorf("queue redis: %d of %d replicas acknowledged the event within %s", n, s.replicas, s.timeout)
	}
	return nil
}

// Take implements QueueStore. The next due time it returns does not count
// the attempts of an instance that died: they are due when their takeover
// time is over, which the engine finds by taking again within a second.
func (s *redisQueueStore) Take(ctx context.Context, now time.Time, n int) ([]*QueuedEvent, time.Time, error) {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer cancel()
	n = max(n, 0)
	claim := "0"
	if last := s.lastClaim.Load(); n > 0 && time.Since(time.Unix(0, last)) >= claimInterval &&
		s.lastClaim.CompareAndSwap(last, time.Now().UnixNano()) {
		claim = "1"
	}
	ownPending := 0
	if n > 0 && s.lost.Swap(false) {
		s.mu.Lock()
		ownPending = n + len(s.taken)
		s.mu.Unlock()
	}
	run := func() ([]any, error) {
		return takeScript.Run(ctx, s.client, []string{s.stream, s.retries},
			s.prefix, redisGroup, s.consumer, n, micros(now), s.takeover.Milliseconds(), claim, ownPending).Slice()
	}
	res, err := run()
	if isNoGroup(err) {
		if err = s.createGroup(ctx); err == nil {
			res, err = run()
		}
	}
	if err == nil && len(res) < 2 {
		err = fmt.Errorf("%d values in the answer", len(res))
	}
	if err != nil {
		if n > 0 {
			// Redis may have run the script and lost only the answer.
			s.lost.Store(true)
		}
		return nil, time.Time{}, fmt.Errorf("queue redis: taking events: %w", err)
	}
	next := earliestDue(res[0], res[1])
	s.mu.Lock()
	defer s.mu.Unlock()
	var taken []*QueuedEvent
	for i := 2; i+2 < len(res); i += 3 {
		id, _ := res[i].(string)
		if s.taken[id] {
			continue // read again while recovering: its attempt runs
		}
		if len(taken) == n {
			s.lost.Store(true) // pending for us with no attempt: the next Take
			continue
		}
		meta, _ := res[i+1].(string)
		body, _ := res[i+2].(string)
		ev := new(QueuedEvent)
		if err := json.Unmarshal([]byte(meta), ev); err != nil {
			s.lost.Store(true)
			return nil, time.Time{}, fmt.Errorf("queue redis: event %s: decoding metadata: %w", id, err)
		}
		ev.ID, ev.Body = id, []byte(body)
		taken = append(taken, ev)
	}
	for _, ev := range taken {
		s.taken[ev.ID] = true
	}
	return taken, next, nil
}

// earliestDue is the earlier of the take script's two due times: the first
// unread stream entry's (unix ns) and the first retry's (unix µs), each
// nil when there is none. It is zero when neither is.
func earliestDue(entry, retry any) time.Time {
	var due time.Time
	if v, ok := entry.(string); ok {
		if ns, err := strconv.ParseInt(v, 10, 64); err == nil {
			due = time.Unix(0, ns)
		}
	}
	if v, ok := retry.(string); ok {
		if us, err := strconv.ParseFloat(v, 64); err == nil {
			if at := time.UnixMicro(int64(us)); due.IsZero() || at.Before(due) {
				due = at
			}
		}
	}
	return due
}

// ended forgets an event this store handed out.
func (s *redisQueueStore) ended(id string) {
	s.mu.Lock()
	delete(s.taken, id)
	s.mu.Unlock()
}

// Ack implements QueueStore. keepKey <= 0 forgets the key at once.
func (s *redisQueueStore) Ack(ctx context.Context, ev *QueuedEvent, keepKey time.Duration) error {
	defer s.ended(ev.ID)
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	until := time.Now().Add(keepKey)
	keepMS := int64(0)
	if keepKey > 0 {
		keepMS = max(keepKey.Milliseconds(), 1)
	}
	res, err := ackScript.Run(ctx, s.client, []string{s.stream, s.waiting, s.retries, s.kept},
		s.prefix, redisGroup, ev.ID, keepMS, micros(until)).Int()
	if err != nil {
		return fmt.Errorf("queue redis: acknowledging event %s: %w", ev.ID, err)
	}
	if res == 0 {
		return fmt.Errorf("queue redis: acknowledging event %s: %w", ev.ID, ErrQueueEventNotFound)
	}
	return nil
}

// Retry implements QueueStore.
func (s *redisQueueStore) Retry(ctx context.Context, ev *QueuedEvent, at time.Time) error {
	rec := *ev
	rec.DeadAt = time.Time{}
	return s.move(ctx, &rec, "retrying", at, "R")
}

// Bury implements QueueStore. A zero ev.DeadAt means now. The body stays,
// for replay.
func (s *redisQueueStore) Bury(ctx context.Context, ev *QueuedEvent) error {
	rec := *ev
	if rec.DeadAt.IsZero() {
		rec.DeadAt = time.Now()
	}
	return s.move(ctx, &rec, "burying", rec.DeadAt, "D")
}

// move stores rec's metadata and puts it in the retries or the dead letters
// (to), scored at.
func (s *redisQueueStore) move(ctx context.Context, rec *QueuedEvent, doing string, at time.Time, to string) error {
	defer s.ended(rec.ID)
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	meta, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("queue redis: %s event %s: encoding metadata: %w", doing, rec.ID, err)
	}
	res, err := moveScript.Run(ctx, s.client, []string{s.stream, s.retries, s.waiting, s.dead},
		s.prefix, redisGroup, rec.ID, meta, micros(at), to).Int()
	if err != nil {
		return fmt.Errorf("queue redis: %s event %s: %w", doing, rec.ID, err)
	}
	if res == 0 {
		return fmt.Errorf("queue redis: %s event %s: %w", doing, rec.ID, ErrQueueEventNotFound)
	}
	return nil
}

// Replay implements QueueStore.
func (s *redisQueueStore) Replay(ctx context.Context, ids []string, all bool) (int, error) {
	if s.closed.Load() {
		return 0, errRedisQueueClosed
	}
	replayed := 0
	for start := 0; ; start += redisChunk {
		var chunk []string
		if all {
			var err error
			chunk, err = s.client.ZRange(ctx, s.dead, 0, redisChunk-1).Result()
			if err != nil {
				return replayed, fmt.Errorf("queue redis: replaying dead letters: %w", err)
			}
		} else if start < len(ids) {
			chunk = ids[start:min(start+redisChunk, len(ids))]
		}
		if len(chunk) == 0 {
			return replayed, nil
		}
		events, err := s.load(ctx, chunk)
		if err != nil {
			return replayed, fmt.Errorf("queue redis: replaying dead letters: %w", err)
		}
		args := []any{s.prefix, strconv.FormatInt(time.Now().UnixNano(), 10)}
		seen := make(map[string]bool)
		for _, ev := range events {
			if ev == nil || ev.DeadAt.IsZero() || seen[ev.ID] {
				continue
			}
			seen[ev.ID] = true
			ev.Attempts, ev.DeadAt = 0, time.Time{}
			meta, err := json.Marshal(ev)
			if err != nil {
				return replayed, fmt.Errorf("queue redis: replaying event %s: %w", ev.ID, err)
			}
			args = append(args, ev.ID, meta)
		}
		n := 0
		if len(args) > 2 {
			n, err = replayScript.Run(ctx, s.client, []string{s.stream, s.waiting, s.dead}, args...).Int()
			if err != nil {
				return replayed, fmt.Errorf("queue redis: replaying dead letters: %w", err)
			}
		}
		replayed += n
		if all && n == 0 {
			return replayed, nil // the rest went meanwhile
		}
		if err := ctx.Err(); err != nil {
			return replayed, err
		}
	}
}

// load reads the metadata of the events ids, in one round trip; an event
// that does not exist is nil.
func (s *redisQueueStore) load(ctx context.Context, ids []string) ([]*QueuedEvent, error) {
	pipe := s.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGet(ctx, s.eventKey(id), "m")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	events := make([]*QueuedEvent, len(ids))
	for i, cmd := range cmds {
		meta, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ev := new(QueuedEvent)
		if err := json.Unmarshal(meta, ev); err != nil {
			return nil, fmt.Errorf("event %s: decoding metadata: %w", ids[i], err)
		}
		ev.ID = ids[i]
		events[i] = ev
	}
	return events, nil
}

// Drop implements QueueStore.
func (s *redisQueueStore) Drop(ctx context.Context, id string) error {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	res, err := expireScript.Run(ctx, s.client, []string{s.stream, s.dead, s.kept},
		s.prefix, 0, 0, 1, id).Int64Slice()
	if err != nil {
		return fmt.Errorf("queue redis: dropping event %s: %w", id, err)
	}
	if len(res) == 0 || res[0] == 0 {
		return ErrQueueEventNotFound
	}
	return nil
}

// Dead implements QueueStore. limit <= 0 lists none.
func (s *redisQueueStore) Dead(ctx context.Context, limit int) ([]*QueuedEvent, error) {
	if s.closed.Load() {
		return nil, errRedisQueueClosed
	}
	if limit <= 0 {
		return nil, nil
	}
	ids, err := s.client.ZRange(ctx, s.dead, 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("queue redis: listing dead letters: %w", err)
	}
	var dead []*QueuedEvent
	for start := 0; start < len(ids); start += redisChunk {
		events, err := s.load(ctx, ids[start:min(start+redisChunk, len(ids))])
		if err != nil {
			return nil, fmt.Errorf("queue redis: listing dead letters: %w", err)
		}
		for _, ev := range events {
			if ev != nil {
				dead = append(dead, ev)
			}
		}
	}
	return dead, nil
}

// Expire implements QueueStore. It also removes consumers of instances
// long gone that have nothing pending, so the group does not grow with
// every restart.
func (s *redisQueueStore) Expire(ctx context.Context, now, deadBefore time.Time) error {
	if s.closed.Load() {
		return errRedisQueueClosed
	}
	for {
		res, err := expireScript.Run(ctx, s.client, []string{s.stream, s.dead, s.kept},
			s.prefix, micros(deadBefore), micros(now), redisChunk).Int64Slice()
		if err != nil {
			return fmt.Errorf("queue redis: expiring: %w", err)
		}
		if len(res) != 2 || (res[0] < redisChunk && res[1] < redisChunk) {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	consumers, err := s.client.XInfoConsumers(ctx, s.stream, redisGroup).Result()
	if err != nil {
		if isNoGroup(err) {
			return nil
		}
		return fmt.Errorf("queue redis: listing consumers: %w", err)
	}
	for _, c := range consumers {
		if c.Name != s.consumer && c.Pending == 0 && c.Idle > 24*time.Hour {
			if err := s.client.XGroupDelConsumer(ctx, s.stream, redisGroup, c.Name).Err(); err != nil {
				return fmt.Errorf("queue redis: removing consumer %s: %w", c.Name, err)
			}
		}
	}
	return nil
}

// Stats implements QueueStore. The counts are the queue's, over every
// instance; in flight counts attempts of every instance, including those
// of one that died and that are not yet taken over.
func (s *redisQueueStore) Stats(ctx context.Context) (QueueStats, error) {
	ctx, cancel, err := s.call(ctx)
	if err != nil {
		return QueueStats{}, err
	}
	defer cancel()
	pipe := s.client.Pipeline()
	waiting := pipe.ZCard(ctx, s.waiting)
	dead := pipe.ZCard(ctx, s.dead)
	oldest := pipe.ZRange(ctx, s.waiting, 0, 0)
	pending := pipe.XPending(ctx, s.stream, redisGroup)
	if _, err := pipe.Exec(ctx); err != nil && !isNoGroup(err) {
		return QueueStats{}, fmt.Errorf("queue redis: counting events: %w", err)
	}
	inFlight := 0
	if p, err := pending.Result(); err == nil {
		inFlight = int(p.Count)
	}
	st := QueueStats{
		Queued:   max(int(waiting.Val())-inFlight, 0),
		InFlight: inFlight,
		Dead:     int(dead.Val()),
	}
	if ids := oldest.Val(); len(ids) == 1 {
		if t, ok := idTime(ids[0]); ok {
			st.OldestQueued = t
		}
	}
	return st, nil
}

// Close implements QueueStore. It is called when no attempt of this
// process runs any more: the entries still pending for this store's
// consumer were cut short, and are made due again at once, for whichever
// instance takes first.
func (s *redisQueueStore) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	err := releasePendingScript.Run(ctx, s.client, []string{s.stream, s.retries},
		s.prefix, redisGroup, s.consumer, micros(time.Now())).Err()
	if err != nil && !isNoGroup(err) {
		err = fmt.Errorf("queue redis: handing back attempts cut short: %w", err)
	} else {
		err = nil
	}
	return errors.Join(err, s.client.Close())
}

// Interface guards
var (
	_ QueueBackend      = (*RedisQueue)(nil)
	_ caddy.Module      = (*RedisQueue)(nil)
	_ caddy.Provisioner = (*RedisQueue)(nil)
	_ QueueStore        = (*redisQueueStore)(nil)
)
