package local.feedback.esanalysis;

import org.elasticsearch.plugin.settings.AnalysisSettings;
import org.elasticsearch.plugin.settings.StringSetting;

/** Settings of the {@code snowball} token filter: {@code language}, a Snowball stemmer name, default English. */
@AnalysisSettings
public interface SnowballSettings {

    @StringSetting(path = "language", defaultValue = "English")
    String language();
}
