package groqwebhook

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
)

// Defaults of a Redis connection.
const (
	DefaultRedisTimeout  = time.Second
	DefaultRedisPoolSize = 64
)

// RedisConnection is how a store reaches Redis: the options `dedupe redis`
// and `queue redis` share. One address is a single server; several are a
// Redis Cluster; with master_name they are Sentinels.
type RedisConnection struct {
	// Redis addresses, host:port. Required.
	Addresses []string `json:"addresses,omitempty"`

	// The ACL user name, if any.
	Username string `json:"username,omitempty"`

	// The password, if any. May be an `{env.*}` or `{file.*}` placeholder,
	// resolved once at provision time.
	Password string `json:"password,omitempty"`

	// The database number. Redis Cluster has only database 0.
	DB int `json:"db,omitempty"`

	// Connect with TLS.
	TLS bool `json:"tls,omitempty"`

	// The Sentinel master's name: set it to use Sentinel.
	MasterName string `json:"master_name,omitempty"`

	// The limit on each dial, read and write. A de-duplication claim or
	// commit that finds Redis hung fails within about 8 times this: it may
	// wait for the batch ahead of its own, and each batch is retried once
	// on a new connection. Default: 1s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Connections kept per server: enough for the deliveries in flight.
	// Default: 64.
	PoolSize int `json:"pool_size,omitempty"`
}

// provision fills in the defaults and checks the options; what names the
// directive in errors ("dedupe redis", "queue redis"). It resolves the
// password's placeholders and returns the client options. It does not
// connect: a Redis that is down when Caddy starts gets 503s, not a failed
// start.
func (c *RedisConnection) provision(what string) (*redis.UniversalOptions, error) {
	if len(c.Addresses) == 0 {
		return nil, errors.New(what + " needs at least one address")
	}
	if c.Timeout == 0 {
		c.Timeout = caddy.Duration(DefaultRedisTimeout)
	}
	if c.PoolSize == 0 {
		c.PoolSize = DefaultRedisPoolSize
	}
	switch {
	case c.Timeout < 0:
		return nil, fmt.Errorf("%s timeout must be positive, got %s", what, time.Duration(c.Timeout))
	case c.PoolSize < 0:
		return nil, fmt.Errorf("%s pool_size must be positive, got %d", what, c.PoolSize)
	case c.DB < 0:
		return nil, fmt.Errorf("%s db must not be negative, got %d", what, c.DB)
	case c.DB != 0 && c.cluster():
		return nil, fmt.Errorf("%s db %d cannot be used with several addresses (Redis Cluster has only db 0)", what, c.DB)
	}
	password := c.Password
	if password != "" {
		var err error
		password, err = caddy.NewReplacer().ReplaceOrErr(c.Password, true, true)
		if err != nil || password == "" {
			return nil, fmt.Errorf("%s password is empty after placeholder replacement: check %s",
				what, placeholdersIn(c.Password))
		}
	}
	opts := &redis.UniversalOptions{
		Addrs:        c.Addresses,
		Username:     c.Username,
		Password:     password,
		DB:           c.DB,
		MasterName:   c.MasterName,
		DialTimeout:  time.Duration(c.Timeout),
		ReadTimeout:  time.Duration(c.Timeout),
		WriteTimeout: time.Duration(c.Timeout),
		PoolSize:     c.PoolSize,
		MaxRetries:   1,
	}
	if c.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return opts, nil
}

// cluster reports whether the addresses are a Redis Cluster's.
func (c *RedisConnection) cluster() bool {
	return len(c.Addresses) > 1 && c.MasterName == ""
}
