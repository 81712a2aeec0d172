// Command controller_runtime is the Go peer for bench/kube-operator.bench.ts. Two modes, each run in its own
// process against the bench's control plane (KUBECONFIG):
//
//   - operator: a minimal controller-runtime operator, as kubebuilder would scaffold it, for the same Widget
//     CRD (bench.capstan.dev/v1) as the Capstan one in bench/kube-operator-worker.ts: each Widget gets an
//     owned ConfigMap <name>-data (server-side apply), then status condition Ready=True (server-side apply
//     on /status). Prints {"ready":true} once its caches are synced and its workers run; on SIGTERM it
//     stops and prints the reconcile durations (ms) and its peak RSS.
//   - informer: a plain client-go shared informer of the ConfigMaps of one namespace; prints the live heap
//     and RSS before it starts and after it synced (after a full GC), and the number of cached objects.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	apiruntime "k8s.io/apimachinery/pkg/runtime"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"
)

const fieldOwner = "bench-operator"

var groupVersion = schema.GroupVersion{Group: "bench.capstan.dev", Version: "v1"}

// Widget is the custom resource, typed as kubebuilder would generate it (DeepCopy written by hand here:
// controller-gen is not part of the bench).
type Widget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              WidgetSpec   `json:"spec,omitempty"`
	Status            WidgetStatus `json:"status,omitempty"`
}

type WidgetSpec struct {
	Size int32  `json:"size"`
	Data string `json:"data"`
}

type WidgetStatus struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

type WidgetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Widget `json:"items"`
}

func (in *Widget) DeepCopyInto(out *Widget) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec = in.Spec
	if in.Status.Conditions != nil {
		out.Status.Conditions = make([]metav1.Condition, len(in.Status.Conditions))
		for i := range in.Status.Conditions {
			in.Status.Conditions[i].DeepCopyInto(&out.Status.Conditions[i])
		}
	}
}

func (in *Widget) DeepCopy() *Widget {
	if in == nil {
		return nil
	}
	out := new(Widget)
	in.DeepCopyInto(out)
	return out
}

func (in *Widget) DeepCopyObject() apiruntime.Object { return in.DeepCopy() }

func (in *WidgetList) DeepCopyObject() apiruntime.Object {
	if in == nil {
		return nil
	}
	out := new(WidgetList)
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]Widget, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

// reconciler does what the Capstan operator does, reading from the cache and writing only what differs.
type reconciler struct {
	client client.Client
	mu     sync.Mutex
	ms     []float64
}

func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	started := time.Now()
	defer func() {
		ms := float64(time.Since(started).Microseconds()) / 1000
		r.mu.Lock()
		r.ms = append(r.ms, ms)
		r.mu.Unlock()
	}()
	var w Widget
	if err := r.client.Get(ctx, req.NamespacedName, &w); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	want := map[string]string{"size": strconv.Itoa(int(w.Spec.Size)), "data": w.Spec.Data}
	var cm corev1.ConfigMap
	err := r.client.Get(ctx, client.ObjectKey{Namespace: w.Namespace, Name: w.Name + "-data"}, &cm)
	if err != nil && client.IgnoreNotFound(err) != nil {
		return reconcile.Result{}, err
	}
	if err != nil || !sameData(cm.Data, want) {
		child := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1",
			"kind":       "ConfigMap",
			"metadata": map[string]any{
				"name":      w.Name + "-data",
				"namespace": w.Namespace,
				"ownerReferences": []any{map[string]any{
					"apiVersion":         groupVersion.String(),
					"kind":               "Widget",
					"name":               w.Name,
					"uid":                string(w.UID),
					"controller":         true,
					"blockOwnerDeletion": true,
				}},
			},
			"data": map[string]any{"size": want["size"], "data": want["data"]},
		}}
		if err := r.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(child),
			client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			return reconcile.Result{}, err
		}
	}
	ready := meta.FindStatusCondition(w.Status.Conditions, "Ready")
	if ready == nil || ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != w.Generation {
		transition := metav1.Now()
		if ready != nil && ready.Status == metav1.ConditionTrue {
			transition = ready.LastTransitionTime
		}
		status := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": groupVersion.String(),
			"kind":       "Widget",
			"metadata":   map[string]any{"name": w.Name, "namespace": w.Namespace},
			"status": map[string]any{"conditions": []any{map[string]any{
				"type":               "Ready",
				"status":             "True",
				"reason":             "Applied",
				"message":            "config map applied",
				"observedGeneration": w.Generation,
				"lastTransitionTime": transition.UTC().Format(time.RFC3339),
			}}},
		}}
		//nolint:staticcheck // client.Apply on a subresource: the Apply method has no /status variant in v0.22.
		if err := r.client.Status().Patch(ctx, status, client.Apply,
			client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			return reconcile.Result{}, err
		}
	}
	return reconcile.Result{}, nil
}

func sameData(have, want map[string]string) bool {
	if len(have) != len(want) {
		return false
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func runOperator(namespace string, concurrency int) error {
	ctrl.SetLogger(logr.Discard()) // quiet, and no "SetLogger was never called" warning
	scheme := apiruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	scheme.AddKnownTypes(groupVersion, &Widget{}, &WidgetList{})
	metav1.AddToGroupVersion(scheme, groupVersion)

	cfg, err := ctrl.GetConfig() // KUBECONFIG; client-side rate limiting off (QPS -1), as controller-runtime defaults
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, manager.Options{
		Scheme:                 scheme,
		Metrics:                server.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  crcache.Options{DefaultNamespaces: map[string]crcache.Config{namespace: {}}},
	})
	if err != nil {
		return err
	}
	r := &reconciler{client: mgr.GetClient()}
	err = ctrl.NewControllerManagedBy(mgr).
		For(&Widget{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.ConfigMap{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Complete(r)
	if err != nil {
		return err
	}
	// Runnables without leader election start after the caches; GetInformer then blocks until synced.
	err = mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		for _, obj := range []client.Object{&Widget{}, &corev1.ConfigMap{}} {
			if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
				return err
			}
		}
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return fmt.Errorf("caches did not sync")
		}
		fmt.Printf("{\"ready\":true,\"rssKb\":%d}\n", procStatusKb("VmRSS"))
		<-ctx.Done()
		return nil
	}))
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := mgr.Start(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out, _ := json.Marshal(map[string]any{
		"reconciles": len(r.ms),
		"ms":         r.ms,
		"peakRssKb":  procStatusKb("VmHWM"),
	})
	fmt.Println(string(out))
	return nil
}

func procStatusKb(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	m := regexp.MustCompile(field + `:\s+(\d+)`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// liveHeap is the heap in use after two full collections: what the program holds, garbage excluded.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func runInformer(namespace string) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(clientset, 0, informers.WithNamespace(namespace))
	informer := factory.Core().V1().ConfigMaps().Informer()
	heapBefore := liveHeap()
	rssBefore := procStatusKb("VmRSS")
	started := time.Now()
	stop := make(chan struct{})
	factory.Start(stop)
	if !cache.WaitForCacheSync(stop, informer.HasSynced) {
		return fmt.Errorf("informer did not sync")
	}
	syncMs := float64(time.Since(started).Microseconds()) / 1000
	heapAfter := liveHeap()
	rssAfter := procStatusKb("VmRSS")
	objects := len(informer.GetStore().ListKeys())
	out, _ := json.Marshal(map[string]any{
		"objects":     objects,
		"syncMs":      syncMs,
		"heapBefore":  heapBefore,
		"heapAfter":   heapAfter,
		"rssBeforeKb": rssBefore,
		"rssAfterKb":  rssAfter,
		"peakRssKb":   procStatusKb("VmHWM"),
	})
	fmt.Println(string(out))
	close(stop)
	factory.Shutdown()
	runtime.KeepAlive(informer)
	return nil
}

func main() {
	mode := flag.String("mode", "", "operator | informer")
	namespace := flag.String("namespace", "default", "namespace to watch")
	concurrency := flag.Int("concurrency", 1, "MaxConcurrentReconciles")
	flag.Parse()
	var err error
	switch *mode {
	case "operator":
		err = runOperator(*namespace, *concurrency)
	case "informer":
		err = runInformer(*namespace)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
