package natsd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func start(t *testing.T, o Options) *Server {
	t.Helper()
	if o.StoreDir == "" {
		o.StoreDir = t.TempDir()
	}
	e, err := Start(o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// useJetStream proves a connection may do what Slipway does: a KV bucket.
func useJetStream(t *testing.T, nc *nats.Conn) {
	t.Helper()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(&nats.KeyValueConfig{Bucket: "probe"})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if _, err := kv.PutString("k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
}

func TestAPlainClientIsRefusedAndTheGeneratedCredentialsWork(t *testing.T) {
	dir := t.TempDir()
	creds := filepath.Join(dir, "nats.nk")
	e := start(t, Options{Listen: "127.0.0.1:0", CredsFile: creds})
	if e.CredsFile() != creds {
		t.Fatalf("CredsFile %q, want %q", e.CredsFile(), creds)
	}
	if fi, err := os.Stat(creds); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	_, err := nats.Connect(e.ClientURL(), nats.NoReconnect())
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("unauthenticated connect: %v, want an authorization violation", err)
	}
	opts, err := ClientOptions(creds, "")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect with the generated credentials: %v", err)
	}
	defer nc.Close()
	useJetStream(t, nc)

	inproc, err := e.Connect()
	if err != nil {
		t.Fatalf("in-process connect: %v", err)
	}
	defer inproc.Close()
	if _, err := inproc.JetStream(); err != nil {
		t.Fatal(err)
	}
}

func TestTheCredentialsSurviveARestart(t *testing.T) {
	store := t.TempDir()
	e := start(t, Options{StoreDir: store, Listen: "127.0.0.1:0"})
	want := filepath.Join(store, "nats.nk")
	if e.CredsFile() != want {
		t.Fatalf("default CredsFile %q, want %q", e.CredsFile(), want)
	}
	first, _ := os.ReadFile(want)
	e.Shutdown()
	e = start(t, Options{StoreDir: store, Listen: "127.0.0.1:0"})
	again, _ := os.ReadFile(want)
	if len(first) == 0 || string(first) != string(again) {
		t.Fatal("the seed changed across a restart; clients would be locked out")
	}
	opts, err := ClientOptions(want, "")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	nc.Close()
}

func TestAnInProcessOnlyServerNeedsNoFile(t *testing.T) {
	store := t.TempDir()
	e := start(t, Options{StoreDir: store})
	if e.ClientURL() != "" || e.CredsFile() != "" {
		t.Fatalf("in-process only: ClientURL %q CredsFile %q", e.ClientURL(), e.CredsFile())
	}
	if _, err := os.Stat(filepath.Join(store, "nats.nk")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a seed was written without a listener: %v", err)
	}
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	useJetStream(t, nc)
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		listen string
		tls    bool
		ok     bool
	}{
		{"", false, true},
		{"127.0.0.1:4222", false, true},
		{"127.9.9.9:0", false, true},
		{"[::1]:4222", false, true},
		{"localhost:4222", false, true},
		{"0.0.0.0:0", false, false},
		{":4222", false, false},
		{"[::]:4222", false, false},
		{"10.0.0.1:4222", false, false},
		{"nats.lan:4222", false, false},
		{"0.0.0.0:0", true, true},
		{"10.0.0.1:4222", true, true},
		{"4222", false, false},
	} {
		err := CheckListen(c.listen, c.tls)
		if (err == nil) != c.ok {
			t.Errorf("CheckListen(%q, tls=%v) = %v, want ok=%v", c.listen, c.tls, err, c.ok)
		}
	}
}

// TestStartRefusesAnOpenAddressWithoutTLS decides before binding: the
// address is never listened on.
func TestStartRefusesAnOpenAddressWithoutTLS(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", "10.0.0.1:4222"} {
		_, err := Start(Options{StoreDir: t.TempDir(), Listen: listen})
		if err == nil || !strings.Contains(err.Error(), "TLS") {
			t.Errorf("Start(%s) without TLS: %v, want a refusal naming TLS", listen, err)
		}
	}
	_, err := Start(Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", TLSCert: "cert.pem"})
	if err == nil {
		t.Error("a certificate without a key was accepted")
	}
}

func TestTLSClientsConnectAndPlainOnesDoNot(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	e := start(t, Options{Listen: "127.0.0.1:0", TLSCert: cert, TLSKey: key})
	opts, err := ClientOptions(e.CredsFile(), cert)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("TLS connect trusting the certificate: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("connection does not use TLS")
	}
	useJetStream(t, nc)
	nc.Close()

	plain, _ := ClientOptions(e.CredsFile(), "")
	if nc, err := nats.Connect(e.ClientURL(), append(plain, nats.NoReconnect())...); err == nil {
		nc.Close()
		t.Fatal("a client that does not trust the certificate connected")
	}
	inproc, err := e.Connect()
	if err != nil {
		t.Fatalf("in-process connect with TLS on: %v", err)
	}
	inproc.Close()
}

func TestClientOptionsReadsEachKindOfFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := ClientOptions(write("userpass", "slipway:s3cret-pass\n"), ""); err != nil {
		t.Errorf("user:password: %v", err)
	}
	for name, body := range map[string]string{"empty": "", "nocolon": "s3cret-pass", "twolines": "a:b\nc:d"} {
		_, err := ClientOptions(write(name, body), "")
		if err == nil {
			t.Errorf("%s accepted", name)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the file's contents: %v", name, err)
		}
	}
	if _, err := ClientOptions(filepath.Join(dir, "missing"), ""); err == nil {
		t.Error("a missing file accepted")
	}
	if _, err := ClientOptions("", filepath.Join(dir, "missing-ca.pem")); err == nil {
		t.Error("a missing CA accepted")
	}
}

func TestUserPasswordFileAuthenticates(t *testing.T) {
	// An operator-run server with a user and password, as an external
	// cluster may be: a plain nats-server on loopback.
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, Username: "slipway", Password: "s3cret-pass"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	file := filepath.Join(t.TempDir(), "userpass")
	if err := os.WriteFile(file, []byte("slipway:s3cret-pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := ClientOptions(file, "")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect with user:password: %v", err)
	}
	nc.Close()
}

// selfSigned writes a certificate for 127.0.0.1 that is its own CA.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slipway-nats-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
