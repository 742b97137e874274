// The marketing site's analytics set-up, as a customer would write it: analytics-next from
// npm, pointed at SignUp_Sync by its apiHost; settings inline (cdnSettings), so nothing is
// fetched from Segment's CDN. /config.js (written by the test) sets window.SITE_CONFIG.
(function () {
  var config = window.SITE_CONFIG;
  var strategy = localStorage.getItem('delivery') || 'standard';
  var segment = { apiHost: config.apiHost, protocol: 'http' };
  if (strategy === 'batching') {
    segment.deliveryStrategy = { strategy: 'batching', config: { size: 10, timeout: 300 } };
  }
  var analytics = AnalyticsNext.AnalyticsBrowser.load(
    {
      writeKey: config.writeKey,
      cdnSettings: { integrations: { 'Segment.io': { apiKey: config.writeKey } } },
    },
    { integrations: { 'Segment.io': segment } }
  );
  window.analytics = analytics;
  analytics.page();
  var form = document.getElementById('signup');
  if (form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var email = document.getElementById('email').value;
      var userId = document.getElementById('user-id').value;
      analytics
        .identify(userId, { email: email, firstName: 'Ana' })
        .then(function () {
          return analytics.track('Signed Up', { plan: 'pro' });
        })
        .then(function () {
          document.body.setAttribute('data-signed-up', 'yes');
        });
    });
  }
})();
