package main

// proxy.go: with -proxy, scepca is a plain-HTTP forward proxy instead of a
// CA, so tests can check that scep-agent's -p really goes through a proxy.
// It forwards only to loopback addresses and logs each request as a JSON
// line {"op":"proxy","method":...,"url":...,"status":...}.

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

type forwardProxy struct {
	log *os.File
}

func (p *forwardProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	entry := struct {
		Op     string `json:"op"`
		Method string `json:"method"`
		URL    string `json:"url"`
		Status int    `json:"status"`
	}{"proxy", r.Method, r.URL.String(), 0}
	entry.Status = p.forward(w, r)
	if p.log != nil {
		line, _ := json.Marshal(entry)
		p.log.Write(append(line, '\n'))
	}
}

// forward sends r on to its absolute URL and copies the answer back.
func (p *forwardProxy) forward(w http.ResponseWriter, r *http.Request) int {
	if !r.URL.IsAbs() || r.URL.Scheme != "http" {
		http.Error(w, "this test proxy takes absolute http:// URLs only", http.StatusBadRequest)
		return http.StatusBadRequest
	}
	host := r.URL.Hostname()
	if ip := net.ParseIP(host); (ip == nil && host != "localhost") || (ip != nil && !ip.IsLoopback()) {
		http.Error(w, "this test proxy forwards to loopback only", http.StatusForbidden)
		return http.StatusForbidden
	}
	out, err := http.NewRequest(r.Method, r.URL.String(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return http.StatusBadRequest
	}
	out.Header = r.Header.Clone()
	out.Header.Del("Proxy-Connection")
	out.ContentLength = r.ContentLength
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	return resp.StatusCode
}
