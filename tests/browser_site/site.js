// The marketing site's analytics set-up, as a customer would write it, for either SDK:
// analytics-next (Segment) or RudderStack's analytics-js, both from npm and pointed at
// SignUp_Sync; settings inline, so nothing is fetched from a vendor's CDN. /config.js
// (written by the test) sets window.SITE_CONFIG; localStorage 'sdk' and 'delivery' choose.
import { RudderAnalytics } from '/rs/index.mjs';

var config = window.SITE_CONFIG;
var sdk = localStorage.getItem('sdk') || 'segment';
var delivery = localStorage.getItem('delivery') || 'standard';

function segment() {
  var options = { apiHost: config.apiHost, protocol: 'http' };
  if (delivery === 'batching') {
    options.deliveryStrategy = { strategy: 'batching', config: { size: 10, timeout: 300 } };
  }
  var analytics = window.AnalyticsNext.AnalyticsBrowser.load(
    {
      writeKey: config.writeKey,
      cdnSettings: { integrations: { 'Segment.io': { apiKey: config.writeKey } } },
    },
    { integrations: { 'Segment.io': options } }
  );
  return {
    page: function () { analytics.page(); },
    identify: function (userId, traits) { return analytics.identify(userId, traits); },
    track: function (name, properties) { return analytics.track(name, properties); },
  };
}

function rudderstack() {
  var analytics = new RudderAnalytics();
  var options = {
    // The source's settings inline instead of RudderStack's control plane.
    getSourceConfig: function () {
      return {
        source: {
          id: 'marketing-site',
          name: 'Marketing site',
          writeKey: config.writeKey,
          workspaceId: 'local',
          enabled: true,
          config: {},
          destinations: [],
        },
      };
    },
    plugins: ['XhrQueue', 'StorageMigrator'],
    polyfillIfRequired: false,
    queueOptions: delivery === 'batching' ? { batch: { enabled: true, maxItems: 10, flushInterval: 300 } } : {},
  };
  analytics.load(config.writeKey, config.dataPlaneUrl, options);
  function done(call) {
    return new Promise(function (resolve) { call(resolve); });
  }
  return {
    page: function () { analytics.page(); },
    identify: function (userId, traits) {
      return done(function (cb) { analytics.identify(userId, traits, {}, cb); });
    },
    track: function (name, properties) {
      return done(function (cb) { analytics.track(name, properties, {}, cb); });
    },
  };
}

var site = sdk === 'rudderstack' ? rudderstack() : segment();
site.page();
var form = document.getElementById('signup');
if (form) {
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    var email = document.getElementById('email').value;
    var userId = document.getElementById('user-id').value;
    site
      .identify(userId, { email: email, firstName: 'Ana' })
      .then(function () { return site.track('Signed Up', { plan: 'pro' }); })
      .then(function () { document.body.setAttribute('data-signed-up', 'yes'); });
  });
}
